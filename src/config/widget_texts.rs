//! `messenger.texts`: the widget's words in the visitors' languages. Each language (a
//! BCP 47 tag such as `fr` or `pt-BR`) gives any of the texts; what it leaves out stays in
//! English. The widget picks the first of the browser's languages it has (the tag, then
//! its language alone), or the `data-lang` of its script tag.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most languages `messenger.texts` may hold.
pub const TEXT_LANGUAGES_MAX: usize = 50;
/// The longest text, in characters.
pub const TEXT_MAX_CHARS: usize = 300;

/// The widget's texts in one language; each left out stays as in English.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetTexts {
    /// The launcher button and the panel's heading ("Chat with us").
    pub title: Option<String>,
    /// The text box's label ("Your message").
    pub message_label: Option<String>,
    /// The text box's placeholder ("Type your question").
    pub placeholder: Option<String>,
    /// The send button ("Send").
    pub send: Option<String>,
    /// The close control ("Close chat").
    pub close: Option<String>,
    /// While the agent works ("Assistant is typing…").
    pub typing: Option<String>,
    /// The visitor's own messages ("You").
    pub you: Option<String>,
    /// The agent's messages ("Assistant").
    pub assistant: Option<String>,
    /// A person's messages without a name ("Support").
    pub support: Option<String>,
    /// The unread count on the launcher ("unread").
    pub unread: Option<String>,
    /// Above suggested articles ("Did one of them answer your question?").
    pub suggestions_question: Option<String>,
    /// The button that confirms an article answered ("Yes, that answered it").
    pub suggestions_yes: Option<String>,
    /// The button that asks for a person ("No, talk to a person").
    pub suggestions_no: Option<String>,
    /// After a message to a closed conversation.
    pub conversation_closed: Option<String>,
    /// The rating a closing chat asks for ("How would you rate this conversation?").
    pub rating_label: Option<String>,
    /// The rating's comment box ("Anything to add? (optional)").
    pub rating_comment: Option<String>,
    /// The button that sends the rating ("Send rating").
    pub rating_send: Option<String>,
    /// Once it is sent ("Thank you for your rating.").
    pub rating_thanks: Option<String>,
    /// When Send is pressed before a rating is picked.
    pub rating_pick: Option<String>,
    /// The email an anonymous visitor is asked for on a handover.
    pub email_label: Option<String>,
    /// The button that sends it ("Send email").
    pub email_send: Option<String>,
    /// Once it is sent, before the address ("Thanks: we will also reply to").
    pub email_thanks: Option<String>,
    /// When what was typed is not an email address.
    pub email_invalid: Option<String>,
}

impl WidgetTexts {
    fn all(&self) -> [(&'static str, &Option<String>); 23] {
        [
            ("title", &self.title),
            ("message_label", &self.message_label),
            ("placeholder", &self.placeholder),
            ("send", &self.send),
            ("close", &self.close),
            ("typing", &self.typing),
            ("you", &self.you),
            ("assistant", &self.assistant),
            ("support", &self.support),
            ("unread", &self.unread),
            ("suggestions_question", &self.suggestions_question),
            ("suggestions_yes", &self.suggestions_yes),
            ("suggestions_no", &self.suggestions_no),
            ("conversation_closed", &self.conversation_closed),
            ("rating_label", &self.rating_label),
            ("rating_comment", &self.rating_comment),
            ("rating_send", &self.rating_send),
            ("rating_thanks", &self.rating_thanks),
            ("rating_pick", &self.rating_pick),
            ("email_label", &self.email_label),
            ("email_send", &self.email_send),
            ("email_thanks", &self.email_thanks),
            ("email_invalid", &self.email_invalid),
        ]
    }
}

/// Whether `tag` is a language tag the widget can match: a language of two or three
/// letters, then optional subtags of two to eight letters or digits.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// What is wrong with `messenger.texts`, text by text.
pub(super) fn problems(texts: &BTreeMap<String, WidgetTexts>, bad: &mut impl FnMut(&str, String)) {
    if texts.len() > TEXT_LANGUAGES_MAX {
        bad("messenger.texts", format!("at most {TEXT_LANGUAGES_MAX} languages, found {}", texts.len()));
    }
    for (tag, words) in texts {
        if !is_language_tag(tag) {
            let shown: String = tag.chars().take(40).collect();
            bad("messenger.texts", format!("{shown:?} is not a language tag such as fr or pt-BR"));
            continue;
        }
        for (name, text) in words.all() {
            let Some(text) = text else { continue };
            let path = format!("messenger.texts.{tag}.{name}");
            if text.trim().is_empty() {
                bad(&path, "empty; leave it out to keep the English".into());
            } else if text.chars().count() > TEXT_MAX_CHARS {
                bad(&path, format!("at most {TEXT_MAX_CHARS} characters, found {}", text.chars().count()));
            }
        }
    }
}

/// The texts as the widget reads them: `{"fr": {"title": "..."}}`, only those given, as
/// JSON safe inside a script (`<` escaped, so no text can end it).
pub fn script_json(texts: &BTreeMap<String, WidgetTexts>) -> String {
    let by_language: BTreeMap<&str, BTreeMap<&str, &str>> = texts
        .iter()
        .map(|(tag, words)| {
            let given = words.all().into_iter().filter_map(|(k, v)| v.as_deref().map(|v| (k, v))).collect();
            (tag.as_str(), given)
        })
        .collect();
    serde_json::to_string(&by_language)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_texts_are_checked_and_named() {
        let mut texts = BTreeMap::new();
        texts.insert("fr".to_string(), WidgetTexts { title: Some("Discutez avec nous".into()), ..Default::default() });
        texts.insert("pt-BR".to_string(), WidgetTexts { send: Some(" ".into()), ..Default::default() });
        texts.insert("../etc".to_string(), WidgetTexts::default());
        texts.insert("de".to_string(), WidgetTexts { typing: Some("x".repeat(301)), ..Default::default() });
        let mut found = Vec::new();
        problems(&texts, &mut |path, why| found.push(format!("{path}: {why}")));
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().any(|f| f.starts_with("messenger.texts: \"../etc\" is not a language tag")));
        assert!(found.iter().any(|f| f.starts_with("messenger.texts.pt-BR.send: empty")));
        assert!(found.iter().any(|f| f.starts_with("messenger.texts.de.typing: at most 300 characters")));
    }

    #[test]
    fn the_script_json_cannot_end_the_script() {
        let mut texts = BTreeMap::new();
        texts.insert(
            "fr".to_string(),
            WidgetTexts { title: Some("</script><script>alert(1)".into()), ..Default::default() },
        );
        let json = script_json(&texts);
        assert!(!json.contains("</script"), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["fr"]["title"], "</script><script>alert(1)");
        assert!(back["fr"].get("send").is_none());
    }
}
