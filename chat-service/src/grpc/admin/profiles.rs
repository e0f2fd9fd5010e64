//! Sender profiles pushed by the user service.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response};

use super::{ChatAdminServiceImpl, require_service};
use crate::domain::{ProfilePhoto, UserId, UserProfile, parse_profile_text};
use crate::error::{ChatError, Violation, Violations};
use crate::grpc::request::request_id;

/// Bounds on a profile photo, so one profile cannot bloat every message.
const MAX_URL_CHARS: usize = 2048;
const MAX_VARIANTS: usize = 16;

#[tracing::instrument(
    name = "upsert_user_profile",
    skip_all,
    fields(request_id = %request_id(&request))
)]
pub(super) async fn upsert(
    service: &ChatAdminServiceImpl,
    request: Request<pb::UserProfile>,
) -> Result<Response<pb::UserProfile>, ChatError> {
    require_service(&request)?;
    let profile = parse_profile(request.into_inner())?;
    service.store.put_profile(&profile).await?;
    tracing::info!(user_id = %profile.user_id, "profile stored");
    Ok(Response::new(profile.into()))
}

fn parse_profile(request: pb::UserProfile) -> Result<UserProfile, ChatError> {
    let mut violations = Violations::default();
    let mut text = |field: &'static str, value: Option<&str>| {
        violations.check(field, parse_profile_text(value)).flatten()
    };
    let username = text("username", request.username.as_deref());
    let name = text("name", request.name.as_deref());
    let surname = text("surname", request.surname.as_deref());
    let availability_status = text(
        "availability_status",
        request.availability_status.as_deref(),
    );
    let user_id = violations.check("user_id", UserId::parse(&request.user_id));
    let profile_photo = match request.profile_photo {
        Some(photo) => match parse_photo(photo) {
            Ok(photo) => Some(photo),
            Err(violation) => {
                violations.add(violation.field, violation.description);
                None
            }
        },
        None => None,
    };
    violations.finish(|| {
        Some(UserProfile {
            user_id: user_id?,
            username,
            name,
            surname,
            profile_photo,
            availability_status,
        })
    })
}

fn parse_photo(photo: pb::ProfilePhoto) -> Result<ProfilePhoto, Violation> {
    let too_long = |value: &str| value.chars().count() > MAX_URL_CHARS;
    if photo.url.trim().is_empty() {
        return Err(Violation::new("profile_photo.url", "must not be empty"));
    }
    if too_long(&photo.url) || too_long(&photo.id) || too_long(&photo.r#type) {
        return Err(Violation::new(
            "profile_photo",
            format!("id, url and type must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    if photo.variants.len() > MAX_VARIANTS
        || photo
            .variants
            .iter()
            .any(|(size, url)| too_long(size) || too_long(url))
    {
        return Err(Violation::new(
            "profile_photo.variants",
            format!("at most {MAX_VARIANTS} variants of at most {MAX_URL_CHARS} characters"),
        ));
    }
    Ok(ProfilePhoto::from(photo))
}
