//! Authorization: one matrix, enforced here and nowhere else. Each API
//! handler names the action it performs; this module decides.
//!
//! | action                                   | viewer | developer | operator | admin | approver |
//! |------------------------------------------|:------:|:---------:|:--------:|:-----:|:--------:|
//! | read catalog, guardrails, runtimes, plugins, backends | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | write catalog or guardrails              |        |           |          |   ✓   |          |
//! | deploy                                   |        |     ✓     |    ✓     |   ✓   |          |
//! | operate own deployment (stop, start, delete, logs, MCP) | | ✓ |  ✓     |   ✓   |          |
//! | operate anyone's deployment              |        |           |    ✓     |   ✓   |          |
//! | approve or reject                        |        |           |          |       |    ✓     |
//! | read the audit trail (events)            |        |           |    ✓     |   ✓   |    ✓     |

use crate::auth::{Principal, Role};

#[derive(Debug, Clone, PartialEq)]
pub enum Action<'a> {
    Read,
    WriteCatalog,
    WriteGuardrails,
    Deploy,
    /// Stop, start, delete, logs or MCP traffic of a deployment requested by `owner`.
    Operate {
        owner: Option<&'a str>,
    },
    Approve,
    ReadAudit,
}

#[derive(Debug, thiserror::Error)]
#[error("{user} may not {what}")]
pub struct Forbidden {
    pub user: String,
    pub what: String,
}

pub fn authorize(p: &Principal, action: &Action<'_>) -> Result<(), Forbidden> {
    use Role::*;
    let any = |roles: &[Role]| roles.iter().any(|r| p.has(*r));
    let allowed = match action {
        Action::Read => !p.roles.is_empty(),
        Action::WriteCatalog | Action::WriteGuardrails => any(&[Admin]),
        Action::Deploy => any(&[Developer, Operator, Admin]),
        Action::Operate { owner } => any(&[Operator, Admin]) || (p.has(Developer) && *owner == Some(p.user.as_str())),
        Action::Approve => any(&[Approver]),
        Action::ReadAudit => any(&[Operator, Admin, Approver]),
    };
    if allowed {
        return Ok(());
    }
    let what = match action {
        Action::Read => "read anything without a role".to_string(),
        Action::WriteCatalog => "change the catalog".into(),
        Action::WriteGuardrails => "change guardrail profiles".into(),
        Action::Deploy => "deploy".into(),
        Action::Operate { owner } => format!("operate a deployment of {}", owner.unwrap_or("nobody")),
        Action::Approve => "approve or reject".into(),
        Action::ReadAudit => "read the audit trail".into(),
    };
    Err(Forbidden { user: p.user.clone(), what })
}

/// What a route needs before any of its input is read (see `api::extract::Caller`).
/// `None`: any authenticated caller; the handler decides, e.g. by a deployment's owner.
pub trait Permission: Send + Sync + 'static {
    const ACTION: Option<Action<'static>>;
}

/// The permissions routes ask for, one per row of the matrix above.
pub mod may {
    use super::{Action, Permission};

    macro_rules! permissions {
        ($($name:ident => $action:expr),* $(,)?) => {
            $(pub struct $name;
              impl Permission for $name {
                  const ACTION: Option<Action<'static>> = $action;
              })*
        };
    }

    permissions! {
        Authenticated => None,
        Read => Some(Action::Read),
        WriteCatalog => Some(Action::WriteCatalog),
        WriteGuardrails => Some(Action::WriteGuardrails),
        Deploy => Some(Action::Deploy),
        Approve => Some(Action::Approve),
        ReadAudit => Some(Action::ReadAudit),
    }
}
