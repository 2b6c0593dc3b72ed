//! Salesforce record ids: 15-character case-sensitive ids and their 18-character
//! case-insensitive form, whose last three characters encode the case of the first fifteen.

/// Key prefixes of the objects casebridge works with, as the first three characters of an id.
pub mod prefix {
    pub const CASE: &str = "500";
    pub const CONTACT: &str = "003";
    pub const ACCOUNT: &str = "001";
    pub const USER: &str = "005";
    pub const GROUP: &str = "00G";
    pub const LEAD: &str = "00Q";
    pub const TASK: &str = "00T";
    pub const OPPORTUNITY: &str = "006";
    pub const ORGANIZATION: &str = "00D";
}

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Whether `s` has the shape of a record id (15 or 18 alphanumeric characters).
pub fn is_id(s: &str) -> bool {
    (s.len() == 15 || s.len() == 18) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The 18-character form of a 15- or 18-character id, or `None` if `s` is not an id.
///
/// An 18-character id is normalised from its first fifteen characters, so the two forms of
/// one id always compare equal after this call.
pub fn to_18(s: &str) -> Option<String> {
    if !is_id(s) {
        return None;
    }
    let base = &s[..15];
    let mut out = String::with_capacity(18);
    out.push_str(base);
    for chunk in base.as_bytes().chunks(5) {
        let mut bits = 0usize;
        for (i, b) in chunk.iter().enumerate() {
            if b.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        out.push(SUFFIX_ALPHABET[bits] as char);
    }
    Some(out)
}

/// Whether two ids name the same record, whichever form each is in.
pub fn same(a: &str, b: &str) -> bool {
    match (to_18(a), to_18(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_id_gets_its_documented_suffix() {
        // The example pair from Salesforce's documentation of 15/18 character ids.
        assert_eq!(to_18("001A0000006Vm9r").as_deref(), Some("001A0000006Vm9rIAC"));
        assert_eq!(to_18("001A0000006Vm9rIAC").as_deref(), Some("001A0000006Vm9rIAC"));
        assert!(same("001A0000006Vm9r", "001A0000006Vm9rIAC"));
    }

    #[test]
    fn rejects_what_is_not_an_id() {
        assert!(to_18("001A0000006Vm9").is_none());
        assert!(to_18("001A0000006Vm9r'--").is_none());
        assert!(!same("x", "x"));
    }
}
