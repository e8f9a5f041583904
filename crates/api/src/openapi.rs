//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations (utoipa).

use maxcloud_api_model as m;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "max-cloud API", description = "Order serverless apps and platform services; each order becomes a pull request in the tenant's Git repository."),
    paths(
        routes::health::healthz, routes::health::readyz,
        routes::auth::register, routes::auth::status, routes::auth::create_key, routes::auth::list_keys,
        routes::auth::delete_key, routes::auth::create_git_token,
        routes::invites::create_invite, routes::invites::list_invites, routes::invites::revoke_invite,
        routes::invites::accept_invite, routes::auth::members,
        routes::catalog::list, routes::catalog::get, routes::catalog::estimate, routes::audit::list,
        routes::orders::create, routes::orders::list, routes::orders::get, routes::orders::approve, routes::orders::reject,
        routes::policies::list, routes::policies::set, routes::policies::reset,
        routes::webhooks::github, routes::webhooks::gitea,
        routes::resources::list,
        routes::resources::tree,
        routes::resources::unmanaged,
        routes::services::create, routes::services::list, routes::services::get, routes::services::update, routes::services::patch, routes::services::delete,
        routes::revisions::list, routes::revisions::set_traffic,
        routes::domains::add, routes::domains::list, routes::domains::verify, routes::domains::remove,
        routes::usage::get,
        routes::logs::stream,
        routes::quotas::get, routes::usage::invoice,
        routes::secrets::list, routes::secrets::get, routes::secrets::set, routes::secrets::delete,
        routes::registry::token, routes::registry::info, routes::registry::images,
        routes::events::stream,
    ),
    components(schemas(m::ErrorBody, m::ErrorDetail, m::Health)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("mc_… API key, or an OIDC JWT of the configured identity provider")
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json`
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
