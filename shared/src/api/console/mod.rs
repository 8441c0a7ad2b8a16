//! The web console: server-rendered pages for people, served by the same router as the API
//! (so wherever the API runs: `krafter serve`, the hosted API function). Every page reads
//! and changes jobs through the REST routes in-process (`api::inproc`), as the signed-in
//! key, so scopes, team isolation, validation messages and the audit log are the API's.
//! Sessions are signed cookies (`session`); every form is checked against cross-site
//! requests (`same_origin`); every response carries a strict Content-Security-Policy.

mod assets;
mod fields;
mod pages;
mod session;
mod view;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::ApiState;
use view::Page;

/// What the console's handlers share: the API's state, and the REST routes they call.
#[derive(Clone)]
pub struct Console {
    pub api: ApiState,
    pub rest: Router,
}

/// The console's routes (the gate is layered on them by the caller).
pub fn routes(api: ApiState, rest: Router) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route(
            "/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/new", get(pages::new_job).post(pages::create_job))
        .route("/jobs/{id}", get(pages::job))
        .route("/jobs/{id}/history", get(pages::history))
        .route(
            "/jobs/{id}/edit",
            get(pages::edit_job).post(pages::update_job),
        )
        .route("/jobs/{id}/{action}", post(pages::act))
        .route("/preview", post(pages::preview))
        .route("/team", get(pages::team))
        .route("/team/secret", post(pages::reveal_secret))
        .route("/team/rotate", post(pages::rotate_secret))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            api.console_base.clone(),
            same_origin,
        ))
        .layer(axum::middleware::from_fn(headers))
        .with_state(Console { api, rest })
}

/// The Content-Security-Policy of every console response: nothing inline, nothing from
/// elsewhere, never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A POST from another site is refused: a browser says where a request comes from
/// (`Sec-Fetch-Site`, `Origin`), and either must name this origin. Requests that carry
/// neither are not from a browser, so not a cross-site forgery.
async fn same_origin(State(base): State<String>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || is_same_origin(&request) {
        return next.run(request).await;
    }
    let page = view::Message::new(&base, "Refused", "This form was sent from another site.");
    (StatusCode::FORBIDDEN, page.html()).into_response()
}

fn is_same_origin(request: &Request) -> bool {
    let h = request.headers();
    let value = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (value("origin"), value("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
        (None, _) => true,
    }
}
