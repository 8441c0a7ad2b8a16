//! The console's stylesheet and script, compiled into the binary and served under names
//! that carry a digest of their content, so they can be cached for good.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub struct Asset {
    /// `console.<digest>.css`.
    pub name: String,
    pub body: &'static str,
    pub content_type: &'static str,
}

fn asset(stem: &str, ext: &str, body: &'static str, content_type: &'static str) -> Asset {
    let digest = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
    Asset {
        name: format!("{stem}.{digest}.{ext}"),
        body,
        content_type,
    }
}

pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    let body = include_str!("../../../assets/console.css");
    asset("console", "css", body, "text/css; charset=utf-8")
});

pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    let body = include_str!("../../../assets/console.js");
    asset("console", "js", body, "text/javascript; charset=utf-8")
});

pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(a) = [&*CSS, &*JS].into_iter().find(|a| a.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let immutable = HeaderValue::from_static("public, max-age=31536000, immutable");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            ),
            (header::CACHE_CONTROL, immutable),
        ],
        a.body,
    )
        .into_response()
}
