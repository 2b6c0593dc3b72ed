//! The messenger's two signatures. A visitor token proves a browser started the
//! conversation it names (every call but the first carries it); it is an HMAC of the
//! conversation id under a key kept in the store, so tokens survive restarts and need no
//! table. Identity verification proves the website vouched for a visitor's email: the
//! website sends `user_hash`, the hex HMAC-SHA256 of the email under the secret it shares
//! with casebridge (the scheme Intercom's messenger uses), so nobody can claim a
//! customer's email and see their Salesforce data.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Signs and checks visitor tokens.
pub struct Tokens {
    key: hmac::Key,
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Tokens {
        Tokens { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// The token for `conversation_id`.
    pub fn issue(&self, conversation_id: &str) -> String {
        let tag = hmac::sign(&self.key, &message(conversation_id));
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `token` was issued for `conversation_id` (compared in constant time).
    pub fn check(&self, conversation_id: &str, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token.trim()) {
            Ok(tag) => hmac::verify(&self.key, &message(conversation_id), &tag).is_ok(),
            Err(_) => false,
        }
    }
}

fn message(conversation_id: &str) -> Vec<u8> {
    [b"casebridge-visitor:".as_slice(), conversation_id.as_bytes()].concat()
}

/// Whether `user_hash` is the website's HMAC of `email` under `secret`. The email is
/// compared as the website signed it, trimmed; the hash as hex, either case.
pub fn identity_verified(secret: &[u8], email: &str, user_hash: &str) -> bool {
    let Some(tag) = decode_hex(user_hash.trim()) else { return false };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, email.trim().as_bytes(), &tag).is_ok()
}

/// The hex HMAC-SHA256 a website computes for `email` (for tests and the demo page).
pub fn identity_hash(secret: &[u8], email: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, email.trim().as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_own_conversation() {
        let tokens = Tokens::new(b"k");
        let t = tokens.issue("msg_a");
        assert!(tokens.check("msg_a", &t));
        assert!(!tokens.check("msg_b", &t));
        assert!(!Tokens::new(b"other").check("msg_a", &t), "another key's token");
        assert!(!tokens.check("msg_a", ""));
        assert!(!tokens.check("msg_a", "not base64 ***"));
    }

    #[test]
    fn identity_needs_the_websites_secret() {
        let hash = identity_hash(b"shared", "jane@customer.example");
        assert!(identity_verified(b"shared", "jane@customer.example", &hash));
        assert!(identity_verified(b"shared", "jane@customer.example", &hash.to_uppercase()));
        assert!(!identity_verified(b"shared", "john@customer.example", &hash), "someone else's email");
        assert!(!identity_verified(b"guess", "jane@customer.example", &hash));
        assert!(!identity_verified(b"shared", "jane@customer.example", "zz"));
        assert!(!identity_verified(b"shared", "jane@customer.example", "é"));
    }
}
