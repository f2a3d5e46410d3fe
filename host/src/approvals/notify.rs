//! Telling people about approval requests: a signed webhook and, when SMTP is
//! configured, email. Each outcome is an event.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use super::Approval;
use crate::clock::Clock;
use crate::config::{Notification, SmtpConfig};
use crate::events::{EventData, EventKind, MailFailure, MailSent, NoticeFailure, NoticeSent};
use crate::store::{NewEvent, Store};
use crate::webhook;

/// Sends each notice in the background (a slow receiver holds up nothing)
/// and records its outcome.
pub struct Notifier {
    pub config: Notification,
    pub http: reqwest::Client,
    pub store: Arc<Store>,
    pub tasks: crate::tasks::Supervisor,
    pub clock: Arc<dyn Clock>,
}

impl Notifier {
    /// Tells people: a signed webhook and, when SMTP is configured, email.
    pub(super) fn notify(&self, kind: EventKind, approval: &Approval, recipients: &[String]) {
        self.email(kind, approval, recipients);
        self.webhook(kind, approval, recipients);
    }

    /// Mails the recipients that have an address (`user:a@b`, or a group in `group_emails`).
    fn email(&self, kind: EventKind, approval: &Approval, recipients: &[String]) {
        let notification = &self.config;
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
        let subject = format!("[mcp-runtime] {}: {} on {}", kind.as_str(), approval.slug, approval.backend);
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
        let (store, deployment) = (self.store.clone(), approval.deployment_id.clone());
        self.tasks.spawn_to_completion("approval notification", async move {
            let data = match send_mail(&smtp, &addresses, &subject, body).await {
                Ok(()) => EventData::ApprovalEmailed(MailSent { event: kind, to: addresses }),
                Err(error) => EventData::ApprovalEmailFailed(MailFailure { event: kind, to: addresses, error }),
            };
            let _ = store.record(NewEvent::for_deployment(&deployment, data));
        });
    }

    /// Sends a signed webhook in the background, with retries; the outcome is an event.
    fn webhook(&self, kind: EventKind, approval: &Approval, recipients: &[String]) {
        let Some(url) = self.config.webhook_url.clone().filter(|u| !u.is_empty()) else { return };
        let payload =
            json!({"event": kind.as_str(), "approval": approval, "recipients": recipients, "sent_at": self.clock.now()})
                .to_string();
        let secret = self.config.webhook_secret.clone();
        let (http, store, deployment) = (self.http.clone(), self.store.clone(), approval.deployment_id.clone());
        self.tasks.spawn_to_completion("approval notification", async move {
            let data = match webhook::deliver(&http, &url, kind.as_str(), &payload, secret.as_deref()).await {
                Ok(()) => EventData::ApprovalNotified(NoticeSent { event: kind }),
                Err(error) => {
                    EventData::ApprovalNotifyFailed(NoticeFailure { event: kind, error, attempts: webhook::ATTEMPTS })
                }
            };
            let _ = store.record(NewEvent::for_deployment(&deployment, data));
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
