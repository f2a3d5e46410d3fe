//! The approval workflow. A chain of `approval-rule` components decides
//! whether a deployment must wait for a person; if any rule requires it, the
//! deployment is held as `awaiting_approval` with an approval record naming
//! who asked, what, why (the rules that fired), and who may approve.
//! Approvers are notified by a signed webhook. Approve: the deployment
//! proceeds by itself. Reject or expiry: it ends `rejected`, with the reason.
//! A rule that fails fails the request: nothing is deployed unapproved.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Principal;
use crate::plugins::bindings::types as wit;
use crate::runtime::{Deployment, Runtime, RuntimeError, State};
use crate::store::{NewEvent, Table};

#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalConfig {
    #[serde(default)]
    pub enabled: bool,
    /// `approval-rule` plugins, evaluated in order; all of them are asked.
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default = "default_timeout_hours")]
    pub timeout_hours: f64,
    /// Escalate this long before expiry (default: a quarter of the timeout).
    pub escalate_before_hours: Option<f64>,
    /// Who hears about requests nobody has decided yet.
    #[serde(default)]
    pub escalation: Vec<String>,
    #[serde(default)]
    pub notification: Notification,
    /// Everything else (`required_for`, `approvers`, …) is for the rules.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        ApprovalConfig {
            enabled: false,
            rules: Vec::new(),
            timeout_hours: default_timeout_hours(),
            escalate_before_hours: None,
            escalation: Vec::new(),
            notification: Notification::default(),
            rest: BTreeMap::new(),
        }
    }
}

fn default_timeout_hours() -> f64 {
    48.0
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Notification {
    pub webhook_url: Option<String>,
    /// Key of the `X-MCP-Runtime-Signature` HMAC; the payload is unsigned without it.
    pub webhook_secret: Option<String>,
    #[serde(default)]
    pub email_enabled: bool,
    /// The relay for email; email is sent only when this is set and `email_enabled`.
    pub smtp: Option<SmtpConfig>,
    /// Where a group's mail goes: `{security-team: security@example.com}`.
    #[serde(default)]
    pub group_emails: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

fn default_smtp_port() -> u16 {
    25
}

impl ApprovalConfig {
    /// What an approval rule plugin receives as its settings.
    pub fn rule_settings(&self) -> serde_json::Map<String, Value> {
        let mut settings: serde_json::Map<String, Value> = self.rest.clone().into_iter().collect();
        settings.insert("enabled".into(), json!(self.enabled));
        settings
    }

    fn timeout(&self) -> chrono::Duration {
        chrono::Duration::seconds((self.timeout_hours * 3600.0) as i64)
    }

    fn escalate_before(&self) -> chrono::Duration {
        let hours = self.escalate_before_hours.unwrap_or(self.timeout_hours / 4.0);
        chrono::Duration::seconds((hours * 3600.0) as i64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

/// An approval request as stored and as `GET /approvals/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub deployment_id: String,
    pub slug: String,
    pub backend: String,
    pub status: ApprovalStatus,
    pub requested_by: Option<String>,
    pub requested_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The rules that fired.
    pub reasons: Vec<String>,
    /// Who may decide: `user:…` and `group:…`; empty means any approver.
    pub approvers: Vec<String>,
    pub source: crate::catalog::Source,
    pub resources: crate::runtime::Resources,
    pub guardrails_applied: wit::EffectiveGuardrails,
    pub guardrails_warnings: Vec<wit::Warning>,
    /// Image scan results, when a scanner provides them.
    pub scan_results: Option<Value>,
    #[serde(default)]
    pub escalated: bool,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub notes: Option<String>,
}

/// The decision of the whole rule chain.
pub struct Decision {
    pub reasons: Vec<String>,
    pub approvers: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    #[serde(default)]
    pub notes: Option<String>,
}

impl Runtime {
    /// The current time, as the approval clock sees it (tests move it forward).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.clock_offset.load(Ordering::SeqCst))
    }

    /// Moves the approval clock forward, as if that much time had passed.
    pub fn advance_clock(&self, by: Duration) {
        self.clock_offset.fetch_add(by.as_secs() as i64, Ordering::SeqCst);
    }

    /// Asks every approval rule; `None` when no one needs to approve.
    pub async fn needs_approval(
        &self,
        request: &wit::DeployRequest,
        effective: &wit::EffectiveGuardrails,
    ) -> Result<Option<Decision>, RuntimeError> {
        if !self.config.approval.enabled {
            return Ok(None);
        }
        let input = crate::plugins::bindings::approval::ApprovalInput {
            request: request.clone(),
            effective: effective.clone(),
        };
        let (mut reasons, mut approvers) = (Vec::new(), Vec::new());
        for rule in &self.approval_rules {
            // Fail closed: a rule that traps, loops or errs stops the request.
            let decision = rule
                .approve(&input)
                .await?
                .map_err(|e| RuntimeError::Backend(format!("approval rule '{}' failed: {e}", rule.manifest.id)))?;
            if decision.required {
                reasons.extend(decision.reasons);
                approvers.extend(decision.approvers.into_iter().filter(|a| !approvers.contains(a)).collect::<Vec<_>>());
            }
        }
        Ok((!reasons.is_empty()).then_some(Decision { reasons, approvers }))
    }

    /// Stores the deployment held for approval and its approval request, together.
    pub fn hold_for_approval(&self, deployment: &Deployment, decision: Decision) -> Result<Approval, RuntimeError> {
        let now = self.now();
        let request = deployment.request.as_ref().ok_or_else(|| RuntimeError::Conflict("no request".into()))?;
        let approval = Approval {
            id: uuid::Uuid::new_v4().simple().to_string(),
            deployment_id: deployment.id.clone(),
            slug: deployment.slug.clone(),
            backend: deployment.backend.clone(),
            status: ApprovalStatus::Pending,
            requested_by: deployment.requested_by.clone(),
            requested_at: now,
            expires_at: now + self.config.approval.timeout(),
            reasons: decision.reasons,
            approvers: decision.approvers,
            source: crate::catalog::Source::from_wit(&request.entry.source),
            resources: crate::runtime::Resources::from_wit(&request.resources),
            guardrails_applied: deployment.guardrails_applied.clone(),
            guardrails_warnings: deployment.guardrails_warnings.clone(),
            scan_results: None,
            escalated: false,
            reviewed_by: None,
            reviewed_at: None,
            notes: None,
        };
        let mut event = NewEvent::for_deployment(
            "approval.requested",
            &deployment.id,
            json!({"approval": approval.id, "reasons": approval.reasons}),
        );
        event.actor = deployment.requested_by.clone();
        self.store.create_pair(
            (Table::Deployments, &deployment.id, deployment),
            (Table::Approvals, &approval.id, &approval),
            event,
        )?;
        self.notify("approval.requested", &approval, &approval.approvers);
        Ok(approval)
    }

    pub fn approval(&self, id: &str) -> Result<Approval, RuntimeError> {
        self.store.get(Table::Approvals, id)?.ok_or_else(|| RuntimeError::NotFound(format!("approval '{id}'")))
    }

    pub fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, RuntimeError> {
        let all: Vec<Approval> = self.store.list(Table::Approvals)?;
        Ok(all.into_iter().filter(|a| filter.status.is_none_or(|s| a.status == s)).collect())
    }

    /// Approves or rejects. Exactly one decision wins: the status changes
    /// from pending in one transaction, so a racing second one gets 409.
    pub async fn decide(
        self: &Arc<Self>,
        id: &str,
        who: &Principal,
        approve: bool,
        notes: Option<String>,
    ) -> Result<Approval, RuntimeError> {
        let current = self.approval(id)?;
        if current.requested_by.as_deref() == Some(who.user.as_str()) {
            return Err(RuntimeError::Forbidden(format!("{} may not decide on their own request", who.user)));
        }
        if !may_approve(&current.approvers, who) {
            return Err(RuntimeError::Forbidden(format!(
                "{} is not among the approvers {:?}",
                who.user, current.approvers
            )));
        }
        let now = self.now();
        let status = if approve { ApprovalStatus::Approved } else { ApprovalStatus::Rejected };
        let mut decided = false;
        let approval = self.store.update(Table::Approvals, id, |a: &mut Approval| {
            if a.status != ApprovalStatus::Pending || now >= a.expires_at {
                return None;
            }
            a.status = status;
            a.reviewed_by = Some(who.user.clone());
            a.reviewed_at = Some(now);
            a.notes = notes.clone();
            decided = true;
            let kind = if approve { "approval.approved" } else { "approval.rejected" };
            let mut event = NewEvent::for_deployment(kind, &a.deployment_id, json!({"approval": a.id, "notes": notes}));
            event.actor = Some(who.user.clone());
            Some(event)
        })?;
        if !decided {
            return Err(RuntimeError::Conflict(
                format!("approval '{id}' is already {:?}", approval.status).to_lowercase(),
            ));
        }
        if approve {
            self.release(&approval.deployment_id, &who.user)?;
        } else {
            let why = match &approval.notes {
                Some(n) => format!("rejected by {}: {n}", who.user),
                None => format!("rejected by {}", who.user),
            };
            self.end_rejected(&approval.deployment_id, why, Some(&who.user))?;
        }
        self.notify(if approve { "approval.approved" } else { "approval.rejected" }, &approval, &[]);
        Ok(approval)
    }

    /// Escalates requests close to expiry and expires overdue ones. Called
    /// every few seconds, and after a restart picks up where it left off.
    pub async fn approvals_tick(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let now = self.now();
        let config = &self.config.approval;
        for pending in self.approvals(&ApprovalFilter { status: Some(ApprovalStatus::Pending) })? {
            if now >= pending.expires_at {
                let mut expired = false;
                let a = self.store.update(Table::Approvals, &pending.id, |a: &mut Approval| {
                    (a.status == ApprovalStatus::Pending).then(|| {
                        a.status = ApprovalStatus::Expired;
                        expired = true;
                        NewEvent::for_deployment("approval.expired", &a.deployment_id, json!({"approval": a.id}))
                    })
                })?;
                if expired {
                    let hours = config.timeout_hours;
                    self.end_rejected(
                        &a.deployment_id,
                        format!("approval expired: nobody decided within {hours} hours"),
                        None,
                    )?;
                    self.notify("approval.expired", &a, &[]);
                }
            } else if !pending.escalated && now >= pending.expires_at - config.escalate_before() {
                let a = self.store.update(Table::Approvals, &pending.id, |a: &mut Approval| {
                    (!a.escalated).then(|| {
                        a.escalated = true;
                        NewEvent::for_deployment(
                            "approval.escalated",
                            &a.deployment_id,
                            json!({"approval": a.id, "to": config.escalation}),
                        )
                    })
                })?;
                self.notify("approval.escalated", &a, &config.escalation);
            }
        }
        Ok(())
    }

    /// An approved deployment goes on by itself.
    fn release(self: &Arc<Self>, deployment: &str, approver: &str) -> Result<(), RuntimeError> {
        let mut released = false;
        self.store.update(Table::Deployments, deployment, |d: &mut Deployment| {
            (d.status == State::AwaitingApproval).then(|| {
                d.status = State::Pending;
                d.status_message = Some(format!("approved by {approver}"));
                let mut e = NewEvent::for_deployment(
                    "deployment.state",
                    deployment,
                    json!({"from": "awaiting_approval", "to": "pending"}),
                );
                e.actor = Some(approver.to_string());
                released = true;
                e
            })
        })?;
        if released {
            self.spawn_drive(deployment);
        }
        Ok(())
    }

    fn end_rejected(&self, deployment: &str, why: String, actor: Option<&str>) -> Result<(), RuntimeError> {
        self.store.update(Table::Deployments, deployment, |d: &mut Deployment| {
            (d.status == State::AwaitingApproval).then(|| {
                d.status = State::Rejected;
                d.status_message = Some(why.clone());
                d.desired_running = false;
                let mut e = NewEvent::for_deployment(
                    "deployment.state",
                    deployment,
                    json!({"from": "awaiting_approval", "to": "rejected", "message": why}),
                );
                e.actor = actor.map(String::from);
                e
            })
        })?;
        Ok(())
    }

    /// Tells people: a signed webhook and, when SMTP is configured, email.
    fn notify(&self, kind: &str, approval: &Approval, recipients: &[String]) {
        self.email(kind, approval, recipients);
        self.webhook(kind, approval, recipients);
    }

    /// Mails the recipients that have an address (`user:a@b`, or a group in `group_emails`).
    fn email(&self, kind: &str, approval: &Approval, recipients: &[String]) {
        let notification = &self.config.approval.notification;
        let Some(smtp) = notification.smtp.clone().filter(|_| notification.email_enabled) else { return };
        let addresses: Vec<String> = recipients
            .iter()
            .filter_map(|r| match r.split_once(':') {
                Some(("user", user)) if user.contains('@') => Some(user.to_string()),
                Some(("group", group)) => notification.group_emails.get(group).cloned(),
                _ => None,
            })
            .collect();
        if addresses.is_empty() {
            return;
        }
        let subject = format!("[mcp-runtime] {kind}: {} on {}", approval.slug, approval.backend);
        let body = [
            format!("Deployment of '{}' to {}", approval.slug, approval.backend),
            format!("requested by {}.", approval.requested_by.as_deref().unwrap_or("unknown")),
            format!("Why approval is needed: {}", approval.reasons.join("; ")),
            format!("Approvers: {}", approval.approvers.join(", ")),
            format!("Decide by {}:", approval.expires_at.format("%Y-%m-%d %H:%M UTC")),
            format!("  POST /approvals/{}/approve", approval.id),
            format!("  POST /approvals/{}/reject", approval.id),
        ]
        .join("\n");
        let (store, deployment, kind) = (self.store.clone(), approval.deployment_id.clone(), kind.to_string());
        tokio::spawn(async move {
            let outcome = send_mail(&smtp, &addresses, &subject, body).await;
            let (event_kind, data) = match outcome {
                Ok(()) => ("approval.emailed", json!({"event": kind, "to": addresses})),
                Err(why) => ("approval.email_failed", json!({"event": kind, "to": addresses, "error": why})),
            };
            let _ = store.record(NewEvent::for_deployment(event_kind, &deployment, data));
        });
    }

    /// Sends a signed webhook in the background, with retries; the outcome is an event.
    fn webhook(&self, kind: &str, approval: &Approval, recipients: &[String]) {
        let Some(url) = self.config.approval.notification.webhook_url.clone().filter(|u| !u.is_empty()) else { return };
        let payload =
            json!({"event": kind, "approval": approval, "recipients": recipients, "sent_at": self.now()}).to_string();
        let signature =
            self.config.approval.notification.webhook_secret.as_deref().map(|key| sign(key, payload.as_bytes()));
        let (http, store, kind, deployment) =
            (self.http().clone(), self.store.clone(), kind.to_string(), approval.deployment_id.clone());
        tokio::spawn(async move {
            let mut outcome = String::new();
            for attempt in 0..WEBHOOK_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                let mut request = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-mcp-runtime-event", &kind)
                    .body(payload.clone());
                if let Some(sig) = &signature {
                    request = request.header(SIGNATURE_HEADER, sig);
                }
                match request.timeout(Duration::from_secs(10)).send().await {
                    Ok(r) if r.status().is_success() => {
                        outcome.clear();
                        break;
                    }
                    Ok(r) => outcome = format!("HTTP {}", r.status().as_u16()),
                    Err(e) => outcome = e.to_string(),
                }
            }
            let (event_kind, data) = match outcome.as_str() {
                "" => ("approval.notified", json!({"event": kind})),
                why => ("approval.notify_failed", json!({"event": kind, "error": why, "attempts": WEBHOOK_ATTEMPTS})),
            };
            let _ = store.record(NewEvent::for_deployment(event_kind, &deployment, data));
        });
    }
}

/// One message to every address, over the configured relay.
async fn send_mail(smtp: &SmtpConfig, to: &[String], subject: &str, body: String) -> Result<(), String> {
    use lettre::message::{header::ContentType, Mailbox};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let from: Mailbox = smtp.from.parse().map_err(|e| format!("from '{}': {e}", smtp.from))?;
    let mut message = Message::builder().from(from).subject(subject).header(ContentType::TEXT_PLAIN);
    for address in to {
        message = message.to(address.parse().map_err(|e| format!("to '{address}': {e}"))?);
    }
    let message = message.body(body).map_err(|e| e.to_string())?;
    // Plain SMTP to the configured relay (a local or internal MTA).
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(10)));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        transport = transport
            .credentials(lettre::transport::smtp::authentication::Credentials::new(user.clone(), password.clone()));
    }
    transport.build().send(message).await.map(drop).map_err(|e| e.to_string())
}

pub const SIGNATURE_HEADER: &str = "x-mcp-runtime-signature";
const WEBHOOK_ATTEMPTS: u32 = 4;

/// `sha256=<hex HMAC-SHA256 of the body>`, as GitHub-style receivers expect.
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An approver listed as `user:<sub>`, or holding a listed `group:<name>`; an empty list admits any approver.
fn may_approve(approvers: &[String], who: &Principal) -> bool {
    approvers.is_empty()
        || approvers.iter().any(|a| match a.split_once(':') {
            Some(("user", user)) => user == who.user,
            Some(("group", group)) => who.groups.iter().any(|g| g == group),
            _ => false,
        })
}
