//! The standard schema's lookups and relationships.

use super::*;

#[test]
fn lookups_are_case_insensitive() {
    let s = Schema::standard();
    let case = s.object("case").unwrap();
    assert_eq!(case.name, "Case");
    assert_eq!(case.field("ownerid").unwrap().name, "OwnerId");
    assert_eq!(case.relationship("contact").unwrap().name, "ContactId");
    assert_eq!(case.child("casecomments").unwrap().child_object, "CaseComment");
    assert_eq!(s.object_for_id("500000000000001").unwrap().name, "Case");
}

#[test]
fn every_child_relationship_points_at_a_reference_field() {
    let s = Schema::standard();
    for o in s.objects() {
        for c in &o.children {
            let child = s.object(&c.child_object).unwrap_or_else(|| panic!("{}", c.child_object));
            let f = child.field(&c.field).unwrap_or_else(|| panic!("{}.{}", c.child_object, c.field));
            assert!(f.reference_to.contains(&o.name), "{}.{} -> {}", child.name, f.name, o.name);
        }
    }
}

#[test]
fn custom_fields_are_validated() {
    let mut s = Schema::standard();
    let spec = |name: &str, kind: &str| CustomFieldSpec {
        name: name.into(),
        kind: kind.into(),
        label: None,
        length: None,
        values: vec![],
        restricted: false,
        required: false,
        reference_to: None,
        external_id: false,
        unique: false,
        case_sensitive: false,
        default: None,
        formula: None,
    };
    assert!(s.add_custom_field("Case", &spec("Tier", "string")).unwrap_err().contains("__c"));
    assert!(s.add_custom_field("Case", &spec("Tier__c", "blob")).unwrap_err().contains("unknown type"));
    s.add_custom_field("Case", &spec("Tier__c", "string")).unwrap();
    assert_eq!(s.object("Case").unwrap().field("tier__c").unwrap().length, 255);
    assert!(s.add_custom_field("Case", &spec("Tier__c", "string")).is_err());
    let formula = |src: &str| CustomFieldSpec { formula: Some(src.into()), ..spec("Label__c", "string") };
    s.add_custom_field("Case", &formula(r#"CaseNumber & ": " & Tier__c"#)).unwrap();
    let f = s.object("Case").unwrap().field("Label__c").unwrap();
    assert!(f.calculated && !f.createable && !f.updateable);
    let bad = CustomFieldSpec { name: "Other__c".into(), ..formula("Nope__c & 1") };
    assert!(s.add_custom_field("Case", &bad).unwrap_err().contains("reads 'Nope__c'"), "unknown field");
    let bad = CustomFieldSpec { name: "Other__c".into(), ..formula("LEN(") };
    assert!(s.add_custom_field("Case", &bad).unwrap_err().contains("formula"));
    let flag = CustomFieldSpec { default: Some(serde_json::json!(true)), ..spec("Flag__c", "checkbox") };
    s.add_custom_field("Case", &flag).unwrap();
    let bad = CustomFieldSpec { default: Some(serde_json::json!("soon")), ..spec("Count__c", "int") };
    assert!(s.add_custom_field("Case", &bad).unwrap_err().contains("does not fit"));
}
