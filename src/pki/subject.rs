//! The subject a client certificate must carry, in Kyma's terms, and the same
//! view of any X.509 name: its attributes compared as a set and rendered in
//! Kyma's order (`OU=…,O=…,L=…,ST=…,C=…,CN=…`).

use std::fmt;

use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATION_NAME, OID_X509_ORGANIZATIONAL_UNIT, OID_X509_STATE_OR_PROVINCE_NAME,
};
use x509_parser::x509::X509Name;

use crate::ids::hex;

/// The subject every client certificate must carry: CN = the Application, the
/// rest configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub common_name: String,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub locality: Option<String>,
    pub province: Option<String>,
    pub country: Option<String>,
}

impl Subject {
    /// The same subject with CN = `application`.
    pub fn for_application(&self, application: &str) -> Subject {
        Subject {
            common_name: application.to_string(),
            ..self.clone()
        }
    }

    /// Whether a name has exactly this subject's attributes: each one once, with
    /// its value, and no other (the order they are written in does not matter).
    pub(super) fn is_exactly(&self, attributes: &[NameAttribute]) -> bool {
        let mut wanted = self.attributes();
        wanted.sort();
        let mut found = attributes.to_vec();
        found.sort();
        wanted == found
    }

    fn attributes(&self) -> Vec<NameAttribute> {
        [
            (
                Label::OrganizationalUnit,
                self.organizational_unit.as_deref(),
            ),
            (Label::Organization, self.organization.as_deref()),
            (Label::Locality, self.locality.as_deref()),
            (Label::Province, self.province.as_deref()),
            (Label::Country, self.country.as_deref()),
            (Label::CommonName, Some(self.common_name.as_str())),
        ]
        .into_iter()
        .filter_map(|(label, value)| {
            value.map(|value| NameAttribute {
                label,
                value: value.to_string(),
            })
        })
        .collect()
    }
}

/// Kyma's form: `OU=Test,O=TestOrg,L=Waldorf,ST=Waldorf,C=DE,CN=app`, only the
/// parts set.
impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(&self.attributes()))
    }
}

/// One attribute of a name, as compared and shown: what it is and its text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct NameAttribute {
    label: Label,
    value: String,
}

impl NameAttribute {
    pub(super) fn is_common_name(&self) -> bool {
        self.label == Label::CommonName
    }

    pub(super) fn value(&self) -> &str {
        &self.value
    }
}

/// The attributes Kyma knows, declared in the order Kyma writes them (the
/// derived `Ord` sorts so), then any other by its short name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    OrganizationalUnit,
    Organization,
    Locality,
    Province,
    Country,
    CommonName,
    Other(String),
}

impl Label {
    fn as_str(&self) -> &str {
        match self {
            Label::OrganizationalUnit => "OU",
            Label::Organization => "O",
            Label::Locality => "L",
            Label::Province => "ST",
            Label::Country => "C",
            Label::CommonName => "CN",
            Label::Other(name) => name,
        }
    }
}

/// The attributes of an X.509 name, as written (a multi-valued RDN gives each
/// of its attributes). A value that is not text is shown as `#` and its hex.
pub(super) fn attributes_of(name: &X509Name<'_>) -> Vec<NameAttribute> {
    name.iter_attributes()
        .map(|attribute| {
            let oid = attribute.attr_type();
            let label = if *oid == OID_X509_ORGANIZATIONAL_UNIT {
                Label::OrganizationalUnit
            } else if *oid == OID_X509_ORGANIZATION_NAME {
                Label::Organization
            } else if *oid == OID_X509_LOCALITY_NAME {
                Label::Locality
            } else if *oid == OID_X509_STATE_OR_PROVINCE_NAME {
                Label::Province
            } else if *oid == OID_X509_COUNTRY_NAME {
                Label::Country
            } else if *oid == OID_X509_COMMON_NAME {
                Label::CommonName
            } else {
                Label::Other(
                    oid2abbrev(oid, oid_registry())
                        .map_or_else(|_| oid.to_id_string(), str::to_string),
                )
            };
            let value = attribute.as_str().map_or_else(
                |_| format!("#{}", hex(attribute.as_slice())),
                str::to_string,
            );
            NameAttribute { label, value }
        })
        .collect()
}

/// Kyma's rendering of a name: its attributes in Kyma's order, comma-separated.
pub(super) fn render(attributes: &[NameAttribute]) -> String {
    let mut sorted = attributes.to_vec();
    sorted.sort();
    sorted
        .iter()
        .map(|attribute| format!("{}={}", attribute.label.as_str(), attribute.value))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kyma_test_subject() -> Subject {
        Subject {
            common_name: "app".into(),
            organization: Some("TestOrg".into()),
            organizational_unit: Some("Test".into()),
            locality: Some("Waldorf".into()),
            province: Some("Waldorf".into()),
            country: Some("DE".into()),
        }
    }

    fn attribute(label: Label, value: &str) -> NameAttribute {
        NameAttribute {
            label,
            value: value.into(),
        }
    }

    #[test]
    fn display_is_kymas_form_with_only_the_parts_set() {
        let full = kyma_test_subject();
        let cases = [
            (
                full.clone(),
                "OU=Test,O=TestOrg,L=Waldorf,ST=Waldorf,C=DE,CN=app",
            ),
            (
                Subject {
                    locality: None,
                    province: None,
                    ..full.clone()
                },
                "OU=Test,O=TestOrg,C=DE,CN=app",
            ),
            (
                Subject {
                    common_name: "only".into(),
                    organization: None,
                    organizational_unit: None,
                    locality: None,
                    province: None,
                    country: None,
                },
                "CN=only",
            ),
        ];
        for (subject, shown) in cases {
            assert_eq!(subject.to_string(), shown);
        }
    }

    #[test]
    fn for_application_replaces_only_the_common_name() {
        let subject = kyma_test_subject().for_application("orders");
        assert_eq!(subject.common_name, "orders");
        assert_eq!(
            subject,
            Subject {
                common_name: "orders".into(),
                ..kyma_test_subject()
            }
        );
    }

    #[test]
    fn a_name_matches_only_with_the_same_attributes_in_any_order() {
        let subject = Subject {
            locality: None,
            province: None,
            organizational_unit: None,
            ..kyma_test_subject()
        };
        let exact = vec![
            attribute(Label::CommonName, "app"),
            attribute(Label::Country, "DE"),
            attribute(Label::Organization, "TestOrg"),
        ];
        assert!(subject.is_exactly(&exact), "written in another order");

        let mut extra = exact.clone();
        extra.push(attribute(Label::Other("Email".into()), "a@b.c"));
        let mut twice = exact.clone();
        twice.push(attribute(Label::Country, "DE"));
        let cases = [
            ("an extra attribute", extra),
            ("an attribute twice", twice),
            ("a missing attribute", exact[..2].to_vec()),
            (
                "another value",
                vec![
                    attribute(Label::CommonName, "other"),
                    attribute(Label::Country, "DE"),
                    attribute(Label::Organization, "TestOrg"),
                ],
            ),
        ];
        for (case, attributes) in cases {
            assert!(!subject.is_exactly(&attributes), "{case}");
        }
    }

    #[test]
    fn other_attributes_render_after_kymas_by_short_name() {
        let attributes = vec![
            attribute(Label::Other("Email".into()), "a@b.c"),
            attribute(Label::CommonName, "app"),
            attribute(Label::OrganizationalUnit, "Test"),
        ];
        assert_eq!(render(&attributes), "OU=Test,CN=app,Email=a@b.c");
    }
}
