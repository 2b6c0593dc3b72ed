//! The demo's messenger scene: a visitor on the website asks a question in the chat widget's
//! API and is answered, leaves their email and becomes a lead, asks for a person and the
//! chat becomes a case in the queue, and a person's reply on that case reaches the chat. It
//! talks to the messenger over HTTP, as a browser would.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::channels::messenger::{Messenger, MessengerSettings, api};
use crate::daemon::Daemon;

/// The messenger the demo serves, and one visitor's conversation with it.
pub(super) struct ChatScene {
    pub base: String,
    http: reqwest::Client,
    conversation: Option<(String, String)>,
    shown: usize,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the messenger beside `daemon`, on `listen` (a free port when it is taken).
pub(super) async fn start(daemon: &mut Daemon, listen: std::net::SocketAddr) -> anyhow::Result<ChatScene> {
    let settings = MessengerSettings { create_leads: true, ..MessengerSettings::default() };
    let hub: Arc<Messenger> = Messenger::new(daemon.store().clone(), settings)?;
    daemon.attach_messenger(hub.clone());
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = api::serve_on(listener, hub, async move {
        let _ = stopped.await;
    })?;
    Ok(ChatScene {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        conversation: None,
        shown: 0,
        _stop: stop,
    })
}

impl ChatScene {
    /// The visitor writes: the first message starts the conversation.
    pub async fn visitor_says(&mut self, text: &str) -> anyhow::Result<()> {
        let url = format!("{}/messenger/v1/conversations", self.base);
        let response = match &self.conversation {
            None => self.http.post(url).json(&json!({ "name": "Dana Reyes", "message": text })).send().await?,
            Some((id, token)) => {
                self.http
                    .post(format!("{url}/{id}/messages"))
                    .bearer_auth(token)
                    .json(&json!({ "body": text }))
                    .send()
                    .await?
            }
        };
        let body: Value = response.error_for_status()?.json().await?;
        if self.conversation.is_none() {
            let id = body["conversation_id"].as_str().unwrap_or_default().to_string();
            let token = body["visitor_token"].as_str().unwrap_or_default().to_string();
            self.conversation = Some((id, token));
        }
        Ok(())
    }

    /// The conversation's id (once started).
    pub fn id(&self) -> Option<&str> {
        self.conversation.as_ref().map(|(id, _)| id.as_str())
    }

    /// Prints the chat's messages not shown yet, as the widget shows them.
    pub async fn print_new(&mut self, out: &mut impl Write) -> anyhow::Result<()> {
        let Some((id, token)) = &self.conversation else { return Ok(()) };
        let url = format!("{}/messenger/v1/conversations/{id}/messages?after={}", self.base, self.shown);
        let body: Value = self.http.get(url).bearer_auth(token).send().await?.error_for_status()?.json().await?;
        for m in body["messages"].as_array().into_iter().flatten() {
            let who = match m["author"].as_str() {
                Some("visitor") => "visitor".to_string(),
                _ => m["name"].as_str().unwrap_or("support").to_string(),
            };
            let text: String = m["body"].as_str().unwrap_or_default().replace('\n', " ");
            let text = if text.chars().count() > 100 {
                format!("{}…", text.chars().take(100).collect::<String>())
            } else {
                text
            };
            writeln!(out, "    chat  {who:>9}: {text}")?;
            self.shown = self.shown.max(m["seq"].as_u64().unwrap_or(0) as usize);
        }
        Ok(())
    }
}
