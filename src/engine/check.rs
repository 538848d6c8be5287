//! A check's result: what `status` finds about one part of an instance. It lives in the engine
//! because checks travel as events (`Event::Check`), one by one as each returns, to every view.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Check {
    pub id: String,
    pub status: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(id: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status: Level::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warn(
        id: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            status: Level::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(
        id: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            status: Level::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}
