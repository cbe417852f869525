//! Shell-style wildcard matching, shared by fault patterns and permission
//! policies: `*` matches any run of characters, `?` any one character.

/// Whether `text` matches `pattern`, character by character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    matches(pattern, text, |p, t| p == t)
}

/// Like [`glob_match`], ignoring ASCII case (policy actions are case-insensitive).
pub fn glob_match_ignore_case(pattern: &str, text: &str) -> bool {
    matches(pattern, text, |p, t| p.eq_ignore_ascii_case(&t))
}

fn matches(pattern: &str, text: &str, same: impl Fn(char, char) -> bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and how much text it has swallowed, to retry with one more character.
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                backtrack = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || same(c, t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    pi = star + 1;
                    ti = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        for (pattern, text) in [("*", ""), ("*", "Decrypt"), ("Decrypt", "Decrypt"), ("Generate*", "GenerateDataKey")] {
            assert!(glob_match(pattern, text), "{pattern} {text}");
        }
        assert!(glob_match("*Data*Key", "GenerateDataKeyWithoutPlaintextKey"));
        assert!(glob_match("key-hzz?", "key-hzz1"));
        for (pattern, text) in [("Decrypt", "ReDecrypt"), ("Generate*", "Encrypt"), ("key-?", "key-12"), ("a*b", "ac")]
        {
            assert!(!glob_match(pattern, text), "{pattern} {text}");
        }
    }

    #[test]
    fn case_is_ignored_only_when_asked() {
        assert!(glob_match_ignore_case("kms:encrypt", "kms:Encrypt"));
        assert!(glob_match_ignore_case("KMS:Gen*", "kms:GenerateDataKey"));
        assert!(!glob_match("kms:encrypt", "kms:Encrypt"));
    }
}
