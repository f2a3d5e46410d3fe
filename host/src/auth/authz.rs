//! Authorization: one matrix, enforced here and nowhere else. Each API
//! handler names the action it performs; this module decides.
//!
//! The matrix is written once, here; `docs/api.md` shows it as `matrix_table`
//! renders it, and a test keeps the two the same.

use crate::auth::{gateway_principal, Principal, Role};

#[derive(Debug, Clone, PartialEq)]
pub enum Action<'a> {
    Read,
    WriteCatalog,
    WriteGuardrails,
    /// Upload, upgrade, roll back and delete plugins; order the rules.
    ManagePlugins,
    Deploy,
    /// Stop, start, delete or logs of a deployment requested by `owner`.
    Operate {
        owner: Option<&'a str>,
    },
    /// MCP traffic to a deployment requested by `owner`.
    UseMcp {
        deployment: &'a str,
        owner: Option<&'a str>,
    },
    Approve,
    ReadAudit,
    ReadMetrics,
    /// Take a backup of the whole state: every record and the token secret.
    Backup,
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
    let operates =
        |owner: &Option<&str>| any(&[Operator, Admin]) || (p.has(Developer) && *owner == Some(p.user.as_str()));
    let allowed = match action {
        Action::Read => any(&[Viewer, Developer, Operator, Admin, Approver]),
        Action::WriteCatalog | Action::WriteGuardrails | Action::ManagePlugins | Action::Backup => any(&[Admin]),
        Action::Deploy => any(&[Developer, Operator, Admin]),
        Action::Operate { owner } => operates(owner),
        Action::UseMcp { deployment, owner } => {
            operates(owner) || (p.has(Gateway) && p.user == gateway_principal(deployment))
        }
        Action::Approve => any(&[Approver]),
        Action::ReadAudit => any(&[Operator, Admin, Approver]),
        Action::ReadMetrics => any(&[Operator, Admin, Metrics]),
    };
    if allowed {
        return Ok(());
    }
    let what = match action {
        Action::Read => "read anything without a role".to_string(),
        Action::WriteCatalog => "change the catalog".into(),
        Action::WriteGuardrails => "change guardrail profiles".into(),
        Action::ManagePlugins => "upload or change plugins".into(),
        Action::Deploy => "deploy".into(),
        Action::Operate { owner } => format!("operate a deployment of {}", owner.unwrap_or("nobody")),
        Action::UseMcp { deployment, .. } => format!("use the MCP endpoint of deployment '{deployment}'"),
        Action::Approve => "approve or reject".into(),
        Action::ReadAudit => "read the audit trail".into(),
        Action::ReadMetrics => "read the metrics".into(),
        Action::Backup => "take a backup".into(),
    };
    Err(Forbidden { user: p.user.clone(), what })
}

/// The matrix as `docs/api.md` shows it, rendered by asking `authorize`.
pub fn matrix_table() -> String {
    let rows: [(&str, Action); 12] = [
        ("read catalog, guardrails, runtimes, plugins, backends", Action::Read),
        ("write catalog or guardrails; register a remote entry with the gateway", Action::WriteCatalog),
        ("upload, upgrade, roll back, delete plugins; order the rules", Action::ManagePlugins),
        ("deploy", Action::Deploy),
        ("stop, start, delete, logs of one's own deployment", Action::Operate { owner: Some("me") }),
        ("the same for anyone's deployment", Action::Operate { owner: Some("someone-else") }),
        ("MCP of one's own deployment", Action::UseMcp { deployment: "d2", owner: Some("me") }),
        (
            "MCP of a deployment registered with the gateway, with the token minted for it",
            Action::UseMcp { deployment: "d1", owner: Some("someone-else") },
        ),
        ("approve or reject", Action::Approve),
        ("read the audit trail (`/events`)", Action::ReadAudit),
        ("read the metrics (`/metrics`)", Action::ReadMetrics),
        ("take a backup of the whole state (`/backup`)", Action::Backup),
    ];
    let mut table = String::from("| action |");
    for role in Role::ALL {
        table += &format!(" {} |", role.name());
    }
    table += "\n|---|";
    table += &":-:|".repeat(Role::ALL.len());
    for (label, action) in rows {
        table += &format!("\n| {label} |");
        for role in Role::ALL {
            table += if role_may(role, &action) { " ✓ |" } else { " |" };
        }
    }
    table
}

/// The roles that hold a permission, by the name the OpenAPI document gives
/// it (`x-permission`), and what else decides when the roles are not all.
pub fn permission_roles(name: &str) -> Option<(Vec<Role>, Option<&'static str>)> {
    let (action, note) = match name {
        "read" => (Action::Read, None),
        "write_catalog" => (Action::WriteCatalog, None),
        "write_guardrails" => (Action::WriteGuardrails, None),
        "manage_plugins" => (Action::ManagePlugins, None),
        "deploy" => (Action::Deploy, None),
        "approve" => (Action::Approve, Some("Only the approvers the approval rules named may decide.")),
        "read_audit" => (Action::ReadAudit, None),
        "read_metrics" => (Action::ReadMetrics, None),
        "backup" => (Action::Backup, None),
        "operate" => (Action::Operate { owner: Some("me") }, Some("A developer only their own deployments.")),
        "follow_approval" => (Action::ReadAudit, Some("Also whoever requested the deployment it holds.")),
        "use_mcp" => (
            Action::UseMcp { deployment: "d1", owner: Some("me") },
            Some("A developer only their own deployments; the gateway with the token minted for the deployment."),
        ),
        _ => return None,
    };
    Some((Role::ALL.into_iter().filter(|&role| role_may(role, &action)).collect(), note))
}

/// Whether `role` alone allows `action` to user `me` (the gateway's token names
/// the deployment it was minted for, `d1`), as the matrix and the document show it.
fn role_may(role: Role, action: &Action<'_>) -> bool {
    let user = if role == Role::Gateway { gateway_principal("d1") } else { "me".into() };
    authorize(&Principal { user, roles: [role].into(), groups: Vec::new() }, action).is_ok()
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
        ManagePlugins => Some(Action::ManagePlugins),
        Deploy => Some(Action::Deploy),
        Approve => Some(Action::Approve),
        ReadAudit => Some(Action::ReadAudit),
        ReadMetrics => Some(Action::ReadMetrics),
        Backup => Some(Action::Backup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_matrix_is_the_enforced_one() {
        let docs = include_str!("../../../docs/api.md");
        let table = matrix_table();
        assert!(docs.contains(&table), "docs/api.md must show the matrix as enforced:\n{table}");
        // The gateway's token reaches its own deployment's MCP endpoint and nothing else.
        let gateway = Principal { user: gateway_principal("d1"), roles: [Role::Gateway].into(), groups: Vec::new() };
        assert!(authorize(&gateway, &Action::UseMcp { deployment: "d1", owner: None }).is_ok());
        assert!(authorize(&gateway, &Action::UseMcp { deployment: "d2", owner: None }).is_err());
        assert!(authorize(&gateway, &Action::Operate { owner: None }).is_err());
        let impostor = Principal { user: "d1".into(), roles: [Role::Gateway].into(), groups: Vec::new() };
        assert!(authorize(&impostor, &Action::UseMcp { deployment: "d1", owner: None }).is_err());
        // One row stands for both writes: they must agree.
        for role in Role::ALL {
            let caller = Principal { user: "me".into(), roles: [role].into(), groups: Vec::new() };
            let (catalog, guardrails) = (&Action::WriteCatalog, &Action::WriteGuardrails);
            assert_eq!(authorize(&caller, catalog).is_ok(), authorize(&caller, guardrails).is_ok(), "{role:?}");
        }
    }
}
