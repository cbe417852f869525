//! Permission policies in Alibaba RAM's JSON shape, and the one decision
//! every authorised call goes through.
//!
//! ```json
//! {"Version":"1","Statement":[
//!   {"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":["acs:kms:*:*:key/*"]},
//!   {"Effect":"Deny","Action":"kms:*","Resource":"acs:kms:cn-hangzhou:*:key/key-secret*"}]}
//! ```
//!
//! Identity policies (attached to a RAM user or an application access point)
//! carry no `Principal`; a key or secret policy's statements must name the principals
//! they apply to (`{"RAM":["acs:ram::<account>:user/alice"]}`, wildcards
//! allowed). For each resource a call touches, the statements that apply are
//! the caller's identity policies and that resource's own policy: an explicit
//! Deny wins, then an Allow, and otherwise the call is denied. A call on
//! several resources (ReEncrypt's two keys) needs every one of them allowed.

use serde_json::Value;

use crate::glob::{glob_match, glob_match_ignore_case};

/// Policies and key policies are bounded like Alibaba's (6144 and 32768 characters).
pub const MAX_POLICY_LEN: usize = 32_768;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Whether a document is attached to an identity or to a resource (a key or a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Applies to whoever it is attached to; a `Principal` is refused.
    Identity,
    /// Applies to the principals each statement names; `Principal` is required.
    Resource,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    actions: Vec<String>,
    resources: Vec<String>,
    /// Principal ARN patterns; `None` for identity policies.
    principals: Option<Vec<String>>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

/// How a request fared against the policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A Deny statement matched.
    ExplicitDeny,
    /// Nothing allowed it.
    ImplicitDeny,
}

/// One resource a call touches, and the resource's own policy if it has one.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    pub arn: &'a str,
    pub policy: Option<&'a PolicyDocument>,
}

impl PolicyDocument {
    /// Parses `text`; the error says what is wrong, for an InvalidParameter message.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<PolicyDocument, String> {
        if text.len() > MAX_POLICY_LEN {
            return Err(format!("A policy is at most {MAX_POLICY_LEN} characters."));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| format!("The policy is not JSON: {e}."))?;
        let Value::Object(document) = value else { return Err("The policy must be a JSON object.".into()) };
        match document.get("Version") {
            Some(Value::String(v)) if VERSIONS.contains(&v.as_str()) => {}
            _ => return Err(r#"The policy needs "Version": "1" (or AWS's "2012-10-17")."#.into()),
        }
        let statements = match document.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list,
            Some(one @ Value::Object(_)) => std::slice::from_ref(one),
            _ => return Err(r#"The policy needs a "Statement" list with at least one statement."#.into()),
        };
        let statements = statements
            .iter()
            .enumerate()
            .map(|(n, s)| Statement::parse(s, kind).map_err(|e| format!("Statement {}: {e}", n + 1)))
            .collect::<Result<_, _>>()?;
        Ok(PolicyDocument { statements })
    }

    /// Allow and deny over `action` on `resource` for `principal`, from this document alone.
    fn effects(&self, principal: &str, action: &str, resource: &str) -> (bool, bool) {
        let mut allowed = false;
        for statement in self.statements.iter().filter(|s| s.applies(principal, action, resource)) {
            match statement.effect {
                Effect::Deny => return (false, true),
                Effect::Allow => allowed = true,
            }
        }
        (allowed, false)
    }
}

impl Statement {
    fn parse(value: &Value, kind: PolicyKind) -> Result<Statement, String> {
        let Value::Object(fields) = value else { return Err("a statement must be a JSON object.".into()) };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !matches!(k.as_str(), "Sid" | "Effect" | "Action" | "Resource" | "Principal" | "Condition"))
        {
            return Err(format!("unknown field \"{unknown}\"."));
        }
        if fields.contains_key("Condition") {
            return Err("conditions are not supported.".into());
        }
        let effect = match fields.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(r#""Effect" must be "Allow" or "Deny"."#.into()),
        };
        let actions = strings(fields.get("Action"), "Action")?;
        if let Some(bad) = actions.iter().find(|a| *a != "*" && !a.contains(':')) {
            return Err(format!("action \"{bad}\" must look like kms:Encrypt."));
        }
        let resources = strings(fields.get("Resource"), "Resource")?;
        let principals = match (kind, fields.get("Principal")) {
            (PolicyKind::Identity, None) => None,
            (PolicyKind::Identity, Some(_)) => return Err("an identity policy names no Principal.".into()),
            (PolicyKind::Resource, Some(Value::String(star))) if star == "*" => Some(vec!["*".to_owned()]),
            (PolicyKind::Resource, Some(Value::Object(by_kind))) => {
                let mut arns = Vec::new();
                for (kind, list) in by_kind {
                    let named = strings(Some(list), "Principal")?;
                    match kind.as_str() {
                        "RAM" => arns.extend(named),
                        "AWS" => arns.extend(named.iter().map(|p| aws_principal(p))),
                        _ => {
                            return Err(format!("principal type \"{kind}\" is not supported; use \"RAM\" or \"AWS\"."));
                        }
                    }
                }
                Some(arns)
            }
            (PolicyKind::Resource, _) => {
                return Err(
                    r#"a key or secret policy statement needs "Principal": {"RAM": ["acs:ram::<account>:*"]}."#.into(),
                );
            }
        };
        Ok(Statement { effect, actions, resources, principals })
    }

    fn applies(&self, principal: &str, action: &str, resource: &str) -> bool {
        self.principals.as_ref().is_none_or(|ps| ps.iter().any(|p| glob_match(p, principal)))
            && self.actions.iter().any(|a| glob_match_ignore_case(a, action))
            && self.resources.iter().any(|r| glob_match(r, resource))
    }
}

/// The policy languages' versions: Alibaba RAM's, and AWS IAM's current and older ones.
const VERSIONS: &[&str] = &["1", "2012-10-17", "2008-10-17"];

/// An AWS principal (`arn:aws:iam::<account>:user/alice`, `…:root`, an account id, `*`) as
/// the RAM principal pattern it stands for. kmsim plays one account, whatever an API calls it,
/// so the account an AWS ARN names is read as that one.
fn aws_principal(principal: &str) -> String {
    if principal == "*" {
        return principal.to_owned();
    }
    if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        return "acs:ram::*:root".to_owned();
    }
    match principal.strip_prefix("arn:aws:iam::").and_then(|rest| rest.split_once(':')) {
        Some((_account, resource)) => format!("acs:ram::*:{resource}"),
        // Names no principal kmsim has, so it matches nobody.
        None => format!("aws-principal:{principal}"),
    }
}

/// A string or a non-empty list of strings.
fn strings(value: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    let list = match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("\"{field}\" holds a non-string.")))
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("\"{field}\" must be a string or a non-empty list of strings.")),
    };
    if list.iter().any(String::is_empty) {
        return Err(format!("\"{field}\" holds an empty string."));
    }
    Ok(list)
}

/// Whether `principal` (an ARN) may do `action` on every one of `resources`,
/// given its identity policies.
pub fn decide(identity: &[&PolicyDocument], principal: &str, action: &str, resources: &[Resource<'_>]) -> Decision {
    let mut decision = Decision::Allow;
    for resource in resources {
        let (mut allowed, mut denied) = (false, false);
        for document in identity.iter().copied().chain(resource.policy) {
            let (allow, deny) = document.effects(principal, action, resource.arn);
            allowed |= allow;
            denied |= deny;
        }
        if denied {
            return Decision::ExplicitDeny;
        }
        if !allowed {
            decision = Decision::ImplicitDeny;
        }
    }
    decision
}

/// The policy a key or secret answers before anyone has set one: the account
/// root may do everything; RAM users and AAPs need identity policies.
pub fn default_resource_policy(account_id: &str) -> String {
    serde_json::json!({
        "Version": "1",
        "Statement": [{
            "Sid": "Enable RAM User Permissions",
            "Effect": "Allow",
            "Principal": { "RAM": [format!("acs:ram::{account_id}:root")] },
            "Action": ["kms:*"],
            "Resource": ["*"],
        }],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "acs:ram::1192853035118460:user/alice";

    #[test]
    fn an_aws_key_policy_names_the_same_principals_in_awss_words() {
        let doc = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Id":"k","Statement":[
                {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
                {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/alice"]},"Action":"kms:Encrypt","Resource":"*"}]}"#,
            PolicyKind::Resource,
        )
        .unwrap();
        let key = Resource { arn: KEY_A, policy: Some(&doc) };
        assert_eq!(decide(&[], ALICE, "kms:Encrypt", &[key]), Decision::Allow);
        assert_eq!(decide(&[], ALICE, "kms:Decrypt", &[key]), Decision::ImplicitDeny);
        assert_eq!(decide(&[], "acs:ram::1192853035118460:root", "kms:Decrypt", &[key]), Decision::Allow);
        assert_eq!(aws_principal("111122223333"), "acs:ram::*:root");
        assert_eq!(aws_principal("arn:aws:sts::1:assumed-role/x"), "aws-principal:arn:aws:sts::1:assumed-role/x");
    }
    const KEY_A: &str = "acs:kms:cn-hangzhou:1192853035118460:key/key-a";
    const KEY_B: &str = "acs:kms:cn-hangzhou:1192853035118460:key/key-b";

    fn identity(json: &str) -> PolicyDocument {
        PolicyDocument::parse(json, PolicyKind::Identity).unwrap()
    }

    fn key_policy(json: &str) -> PolicyDocument {
        PolicyDocument::parse(json, PolicyKind::Resource).unwrap()
    }

    fn statement(effect: &str, action: &str, resource: &str) -> String {
        format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}]}}"#
        )
    }

    fn on(arn: &str) -> Resource<'_> {
        Resource { arn, policy: None }
    }

    /// The evaluation table: each row is (identity policies, key policy, action, resource) → decision.
    #[test]
    fn explicit_deny_beats_allow_and_nothing_is_allowed_by_default() {
        let allow_all = identity(&statement("Allow", "kms:*", "*"));
        let allow_encrypt = identity(&statement("Allow", "kms:Encrypt", "acs:kms:*:*:key/*"));
        let deny_key_a = identity(&statement("Deny", "kms:*", KEY_A));
        let deny_decrypt_any = identity(&statement("Deny", "kms:Decrypt", "*"));
        let table: [(&[&PolicyDocument], &str, &str, Decision); 9] = [
            (&[], "kms:Encrypt", KEY_A, Decision::ImplicitDeny),
            (&[&allow_all], "kms:Encrypt", KEY_A, Decision::Allow),
            (&[&allow_all, &deny_key_a], "kms:Encrypt", KEY_A, Decision::ExplicitDeny),
            (&[&allow_all, &deny_key_a], "kms:Encrypt", KEY_B, Decision::Allow),
            (&[&deny_key_a, &allow_all], "kms:Encrypt", KEY_A, Decision::ExplicitDeny),
            (&[&allow_encrypt], "kms:Encrypt", KEY_B, Decision::Allow),
            (&[&allow_encrypt], "kms:Decrypt", KEY_B, Decision::ImplicitDeny),
            (&[&allow_all, &deny_decrypt_any], "kms:Decrypt", KEY_B, Decision::ExplicitDeny),
            (&[&allow_encrypt], "kms:encrypt", KEY_A, Decision::Allow),
        ];
        for (n, (policies, action, resource, expected)) in table.into_iter().enumerate() {
            assert_eq!(decide(policies, ALICE, action, &[on(resource)]), expected, "row {n}: {action} on {resource}");
        }
    }

    #[test]
    fn wildcards_match_actions_and_resources() {
        let generate = identity(&statement("Allow", "kms:Generate*", "acs:kms:cn-*:*:key/key-?"));
        assert_eq!(decide(&[&generate], ALICE, "kms:GenerateDataKey", &[on(KEY_A)]), Decision::Allow);
        assert_eq!(decide(&[&generate], ALICE, "kms:Encrypt", &[on(KEY_A)]), Decision::ImplicitDeny);
        let far_key = "acs:kms:ap-southeast-1:1192853035118460:key/key-a";
        assert_eq!(decide(&[&generate], ALICE, "kms:GenerateMac", &[on(far_key)]), Decision::ImplicitDeny);
        let long_id = "acs:kms:cn-hangzhou:1192853035118460:key/key-ab";
        assert_eq!(
            decide(&[&generate], ALICE, "kms:GenerateMac", &[on(long_id)]),
            Decision::ImplicitDeny,
            "? is one character"
        );
        let alias = identity(&statement("Allow", "kms:CreateAlias", "acs:kms:*:*:alias/app-*"));
        let alias_arn = "acs:kms:cn-hangzhou:1192853035118460:alias/app-orders";
        assert_eq!(decide(&[&alias], ALICE, "kms:CreateAlias", &[on(alias_arn)]), Decision::Allow);
    }

    #[test]
    fn a_key_policy_grants_and_denies_for_its_own_key_and_named_principals_only() {
        let grant_alice = key_policy(&format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Principal":{{"RAM":["{ALICE}"]}},"Action":["kms:Decrypt"],"Resource":["*"]}}]}}"#
        ));
        let deny_everyone = key_policy(
            r#"{"Version":"1","Statement":[{"Effect":"Deny","Principal":{"RAM":["acs:ram::*:*"]},"Action":"kms:Decrypt","Resource":"*"}]}"#,
        );
        let key_a = Resource { arn: KEY_A, policy: Some(&grant_alice) };
        let bob = "acs:ram::1192853035118460:user/bob";
        // The key policy alone grants Alice, not Bob, and only on key A.
        assert_eq!(decide(&[], ALICE, "kms:Decrypt", &[key_a]), Decision::Allow);
        assert_eq!(decide(&[], bob, "kms:Decrypt", &[key_a]), Decision::ImplicitDeny);
        assert_eq!(decide(&[], ALICE, "kms:Decrypt", &[on(KEY_B)]), Decision::ImplicitDeny);
        // A deny in the key policy beats an allow in the identity policy.
        let allow_all = identity(&statement("Allow", "kms:*", "*"));
        let denied_key = Resource { arn: KEY_A, policy: Some(&deny_everyone) };
        assert_eq!(decide(&[&allow_all], ALICE, "kms:Decrypt", &[denied_key]), Decision::ExplicitDeny);
        assert_eq!(decide(&[&allow_all], ALICE, "kms:Encrypt", &[denied_key]), Decision::Allow);
        // Two resources: both must be allowed.
        assert_eq!(decide(&[], ALICE, "kms:Decrypt", &[key_a, on(KEY_B)]), Decision::ImplicitDeny);
    }

    #[test]
    fn malformed_documents_are_refused_with_the_reason() {
        let cases = [
            ("not json", "not JSON"),
            (r#"{"Statement":[]}"#, "Version"),
            (r#"{"Version":"1","Statement":[]}"#, "at least one"),
            (r#"{"Version":"1","Statement":[{"Effect":"Maybe","Action":"kms:*","Resource":"*"}]}"#, "Effect"),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"Encrypt","Resource":"*"}]}"#, "kms:Encrypt"),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*"}]}"#, "Resource"),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Principal":"*"}]}"#,
                "Principal",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{}}]}"#,
                "conditions",
            ),
        ];
        for (text, reason) in cases {
            let error = PolicyDocument::parse(text, PolicyKind::Identity).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
        let no_principal = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;
        assert!(PolicyDocument::parse(no_principal, PolicyKind::Resource).unwrap_err().contains("Principal"));
        let default = default_resource_policy("1192853035118460");
        assert!(PolicyDocument::parse(&default, PolicyKind::Resource).is_ok());
    }
}
