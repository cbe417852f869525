//! Grants on keys (AWS KMS's instrument): made for a grantee, listed by key or
//! by retiring principal, retired and revoked. What a grant permits is judged
//! where every permission is ([`crate::engine::Engine::authorize`]).

use std::sync::Arc;

use super::operation;
use super::params::Withheld;
use crate::engine::{Grant, GrantConstraints, GrantInput, GrantMade, GrantNamed, Page, Paged};
use crate::kernel::Names;

operation! {
    /// A new grant, or for a named retry with the same parameters the grant already made, with a new token.
    CreateGrant = CREATE_GRANT -> GrantMade {
        key_id: String = "KeyId",
        grantee_principal: String = "GranteePrincipal",
        retiring_principal: String = "RetiringPrincipal",
        operations: Vec<String> = "Operations",
        constraints: GrantConstraints = "Constraints",
        name: String = "Name",
        dry_run: Option<bool> = "DryRun",
        /// The account whose principals the grant names: the one its front end plays.
        issuing_account: String,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let CreateGrant {
            key_id,
            grantee_principal,
            retiring_principal,
            operations,
            constraints,
            name,
            dry_run,
            issuing_account,
        } = op;
        let input = GrantInput {
            grantee_principal,
            retiring_principal,
            operations,
            constraints,
            name,
            issuing_account,
            dry_run: dry_run.unwrap_or(false),
        };
        app.engine.create_grant(&cx, &key_id, input).await?
    }
}

operation! {
    /// A page of a key's grants, oldest first; only one grant's, or one grantee's, when given.
    ListGrants = LIST_GRANTS -> Paged<Arc<Grant>> {
        key_id: String = "KeyId",
        grant_id: String = "GrantId",
        grantee_principal: String = "GranteePrincipal",
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        app.engine.list_grants(&cx, &op.key_id, (&op.grant_id, &op.grantee_principal), page)?
    }
}

operation! {
    /// A page of the grants of the caller's region a principal may retire.
    ListRetirableGrants = LIST_RETIRABLE_GRANTS -> Paged<Arc<Grant>> {
        retiring_principal: String = "RetiringPrincipal",
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        app.engine.list_retirable_grants(&cx, &op.retiring_principal, page)?
    }
}

operation! {
    /// Named by a token, or by its key and id. The grant it retires is known only as it runs, and who may
    /// retire it is judged on that grant.
    RetireGrant = RETIRE_GRANT -> () {
        grant_token: Withheld = "GrantToken",
        key_id: String = "KeyId",
        grant_id: String = "GrantId",
        dry_run: Option<bool> = "DryRun",
    }
    names(_) { Names::found_while_running() }
    run(op, app, cx) {
        let named = match op.grant_token.0.as_str() {
            "" => GrantNamed::Id { key_id: &op.key_id, grant_id: &op.grant_id },
            token => GrantNamed::Token(token),
        };
        app.engine.retire_grant(&cx, named, op.dry_run.unwrap_or(false)).await?
    }
}

operation! {
    RevokeGrant = REVOKE_GRANT -> () {
        key_id: String = "KeyId",
        grant_id: String = "GrantId",
        dry_run: Option<bool> = "DryRun",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.revoke_grant(&cx, &op.key_id, &op.grant_id, op.dry_run.unwrap_or(false)).await? }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Operation;

    #[test]
    fn a_grant_token_is_recorded_only_as_given() {
        let retire = RetireGrant {
            grant_token: Withheld("AQID-secret-token".into()),
            key_id: String::new(),
            grant_id: String::new(),
            dry_run: None,
        };
        assert_eq!(retire.audit_params().to_string(), r#"{"GrantToken":true}"#);
    }
}
