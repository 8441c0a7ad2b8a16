//! Secrets Krafter makes (API keys, webhook signing secrets): a prefix that says what the
//! secret is, then 32 random bytes in URL-safe base64 (43 characters).

use base64::Engine;

/// A fresh secret: `prefix` + 43 URL-safe base64 characters of 32 random bytes.
pub(crate) fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Whether `s` is `prefix` + exactly 43 URL-safe base64 characters.
pub(crate) fn is_valid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_valid_and_fresh() {
        let a = generate("kr_live_");
        assert!(is_valid(&a, "kr_live_"));
        assert!(!is_valid(&a, "whsec_"));
        assert_ne!(a, generate("kr_live_"));
        assert!(!is_valid("kr_live_short", "kr_live_"));
        assert!(!is_valid(
            &format!("kr_live_{}", "+".repeat(43)),
            "kr_live_"
        ));
    }
}
