//! What the caller hears: a recorded file or text to speak, and its
//! language.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A prompt of a flow: exactly one of a recording (`file`) or text to speak
/// (`tts`), and optionally the language it is in.
///
/// In JSON: `{"file": "prompts/main-menu.wav"}` or
/// `{"tts": "Welcome to Acme", "language": "en-US"}`. A prompt without a
/// language is in the call's current language (see
/// [`SetLanguage`](crate::SetLanguage)); one with a language is always
/// played in it, whatever the call's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PromptJson", into = "PromptJson")]
pub struct Prompt {
    pub source: PromptSource,
    pub language: Option<Language>,
}

/// What to play: a recording or text to speak. In an
/// [`Instruction`](crate::Instruction), `{"file": "…"}` or `{"tts": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptSource {
    /// A recording in the tenant's prompt store, by path.
    File(String),
    /// Text for the speech synthesizer.
    Tts(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    language: Option<Language>,
}

impl TryFrom<PromptJson> for Prompt {
    type Error = String;

    fn try_from(json: PromptJson) -> Result<Self, String> {
        let file = json.file.filter(|file| !file.trim().is_empty());
        let tts = json.tts.filter(|tts| !tts.trim().is_empty());
        let source = match (file, tts) {
            (Some(file), None) => PromptSource::File(file),
            (None, Some(tts)) => PromptSource::Tts(tts),
            _ => {
                return Err(
                    "a prompt needs exactly one of a non-empty \"file\" or \"tts\"".to_owned(),
                );
            }
        };
        Ok(Prompt {
            source,
            language: json.language,
        })
    }
}

impl From<Prompt> for PromptJson {
    fn from(prompt: Prompt) -> Self {
        let (file, tts) = match prompt.source {
            PromptSource::File(file) => (Some(file), None),
            PromptSource::Tts(tts) => (None, Some(tts)),
        };
        PromptJson {
            file,
            tts,
            language: prompt.language,
        }
    }
}

/// A language tag such as `en-US` or `fr-FR` (the common shape of BCP 47:
/// an ISO 639 language of 2 or 3 letters, then subtags of 1 to 8 letters
/// or digits, joined by `-`; at most 35 characters). Only the shape is checked; which languages a
/// tenant's speech synthesizer and recordings cover is the media service's
/// business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Language {
    type Error = String;

    fn try_from(tag: String) -> Result<Self, String> {
        let mut subtags = tag.split('-');
        let primary = subtags.next().unwrap_or_default();
        let primary_ok = (2..=3).contains(&primary.len())
            && primary.bytes().all(|byte| byte.is_ascii_alphabetic());
        let rest_ok = subtags.all(|subtag| {
            (1..=8).contains(&subtag.len())
                && subtag.bytes().all(|byte| byte.is_ascii_alphanumeric())
        });
        if primary_ok && rest_ok && tag.len() <= 35 {
            Ok(Language(tag))
        } else {
            Err(format!("{tag:?} is not a language tag such as \"en-US\""))
        }
    }
}

impl From<Language> for String {
    fn from(language: Language) -> String {
        language.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
