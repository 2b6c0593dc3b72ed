//! The widget a website embeds with one `<script>` tag (`/messenger.js`, plain JavaScript,
//! no build step), and a page that embeds it, for trying the messenger.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Messenger;

const SCRIPT: &str = include_str!("widget.js");
const PAGE: &str = include_str!("page.html");

/// Where the script takes the configured texts (`messenger.texts`).
const TEXTS_SLOT: &str = "/*TEXTS*/{}";

pub async fn script(State(m): State<Arc<Messenger>>) -> Response {
    let script = SCRIPT.replacen(TEXTS_SLOT, &m.settings().texts_json, 1);
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        script,
    )
        .into_response()
}

pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}
