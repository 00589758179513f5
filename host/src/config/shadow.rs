//! `shadow = { ... }` on a `[[pipeline]]`: shadow evaluation, the online check of a
//! routing threshold.
//!
//! For a share of the requests a pipeline answers locally, the host serves the same
//! request again after the client has its answer, with `params` added to its metadata
//! (e.g. `route = "remote"`, so the serverless side answers), and records whether the two
//! answers agree, per local model version (see [`crate::shadow`]). Shadow calls go
//! through the same endpoints as any other request, so they are charged to `[budget]`:
//! when it is spent, shadows stop reaching the endpoint and count as `error`.

use serde::Deserialize;

use super::settings::{self, Settings};

/// Shadow evaluation of a pipeline's local answers against serverless ones.
///
/// ```toml
/// [[pipeline]]
/// name = "cascade"
/// shadow = { share = 0.1, params = { route = "remote" }, answer = "label" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// Share of the requests answered locally (route exactly `local`) that are shadowed,
    /// greater than 0 and at most 1 (1 shadows every one).
    pub share: f64,
    /// Metadata added to the shadow request (strings, numbers or booleans, passed as
    /// text); they replace client keys of the same name. Keys are lower-case and may not
    /// start with `setting.` (operator settings stay the pipeline's own).
    #[serde(default)]
    pub params: Settings,
    /// The top-level field of the JSON response bodies that is compared.
    #[serde(default = "default_answer")]
    pub answer: String,
}

fn default_answer() -> String {
    "label".into()
}

impl ShadowConfig {
    /// Checks the share, the parameter keys and the answer field, naming the first
    /// problem.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.share > 0.0 && self.share <= 1.0) {
            return Err(format!(
                "shadow.share must be greater than 0 and at most 1, got {}",
                self.share
            ));
        }
        settings::validate(&self.params).map_err(|e| format!("shadow.params: {e}"))?;
        if let Some(key) = self.params.keys().find(|k| k.starts_with(settings::PREFIX)) {
            return Err(format!(
                "shadow.params: {key:?} is an operator setting; set it in the pipeline's settings"
            ));
        }
        if self.answer.is_empty() {
            return Err("shadow.answer must name a field of the response body".into());
        }
        Ok(())
    }

    /// The shadow request's metadata: the client's pairs without those `params`
    /// replace, then `params`.
    pub fn metadata(&self, client: &[(String, String)]) -> Vec<(String, String)> {
        client
            .iter()
            .filter(|(k, _)| !self.params.contains_key(k))
            .cloned()
            .chain(self.params.iter().map(|(k, v)| (k.clone(), v.text())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shadow(text: &str) -> ShadowConfig {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn params_replace_client_keys_and_the_answer_defaults_to_label() {
        let s = shadow("share = 1.0\nparams = { route = \"remote\", threshold = 0.5 }");
        assert_eq!(s.answer, "label");
        assert!(s.validate().is_ok());
        let client = vec![
            ("route".to_owned(), "local".to_owned()),
            ("language".to_owned(), "en".to_owned()),
        ];
        assert_eq!(
            s.metadata(&client),
            vec![
                ("language".to_owned(), "en".to_owned()),
                ("route".to_owned(), "remote".to_owned()),
                ("threshold".to_owned(), "0.5".to_owned()),
            ]
        );
    }

    #[test]
    fn refuses_shares_outside_zero_to_one_and_settings_in_params() {
        for share in ["0", "-0.5", "1.5", "nan"] {
            let err = shadow(&format!("share = {share}"))
                .validate()
                .expect_err("refused");
            assert!(err.contains("shadow.share"), "{err}");
        }
        let err = shadow("share = 0.1\nparams = { \"setting.threshold\" = 0.5 }")
            .validate()
            .expect_err("refused");
        assert!(err.contains("operator setting"), "{err}");
        let err = shadow("share = 0.1\nparams = { Route = \"remote\" }")
            .validate()
            .expect_err("refused");
        assert!(err.contains("\"Route\""), "{err}");
        let err = shadow("share = 0.1\nanswer = \"\"")
            .validate()
            .expect_err("refused");
        assert!(err.contains("shadow.answer"), "{err}");
    }
}
