//! The control plane's operations on an S3-compatible bucket prefix.

use super::{join, DeleteOutcome, ObjectInfo};
use crate::error::{Error, FailureClass, Result};
use crate::s3::{client, describe};
use crate::StorageOptions;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

/// S3's largest page of ListObjectsV2.
const PAGE: usize = 1000;

/// A bucket and the destination's key prefix.
pub(super) struct S3Destination {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

/// The HTTP status of a failed request, if it got that far.
fn status<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// What to do about a failure, from the S3 error code or HTTP status.
fn hint<E: ProvideErrorMetadata>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> &'static str {
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
    match (code, status(err)) {
        ("NoSuchBucket", _) => "; check the bucket name (it does not exist at this endpoint)",
        ("InvalidAccessKeyId", _) => "; check the access key id (the server does not know it)",
        ("SignatureDoesNotMatch", _) => {
            "; check the secret access key (it does not match the key id)"
        }
        ("AccessDenied", _) | (_, Some(403)) => {
            "; the server refused the key or this operation: check the access key id and \
             secret access key, and that the key may list, read, write and delete in this \
             bucket"
        }
        (_, Some(301)) | ("AuthorizationHeaderMalformed", _) => {
            "; check the region and the endpoint"
        }
        _ => "",
    }
}

/// The tenant-facing class of a failed request (see [`FailureClass`]).
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> FailureClass {
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
    match (err, code, status(err)) {
        // The policy resolver refused the address at connect time: its refusal is in
        // the chain of causes.
        (SdkError::DispatchFailure(_), _, _) if crate::reach::refused_in_chain(err) => {
            FailureClass::NotAllowed
        }
        // The SDK's transport errors name no TLS failure in a type of their own; the
        // TLS library's error is in the chain of causes.
        (SdkError::DispatchFailure(_), _, _)
            if crate::error::cause_in_chain::<rustls::Error>(err).is_some() =>
        {
            FailureClass::Tls
        }
        (SdkError::DispatchFailure(_), _, _) => FailureClass::Connect,
        (SdkError::TimeoutError(_), _, _) => FailureClass::Connect,
        (_, "NoSuchBucket", _) => FailureClass::Missing,
        (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch", _) => FailureClass::Auth,
        (_, "AccessDenied", _) | (_, _, Some(403)) => FailureClass::PermissionDenied,
        (_, _, Some(401)) => FailureClass::Auth,
        _ => FailureClass::Other,
    }
}

/// A failed request as a storage error: `context`, the SDK's description, a hint, and
/// its class.
fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
    context: &str,
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Error {
    Error::storage(format!("{context}: {}{}", describe(err), hint(err))).classed(classify(err))
}

impl S3Destination {
    /// A client for `bucket` with keys under `prefix`; no request is made yet.
    pub(super) fn new(options: &StorageOptions, bucket: &str, prefix: &str) -> Result<Self> {
        Ok(Self {
            client: client(options)?,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    fn full_key(&self, key: &str) -> String {
        join(&self.prefix, key)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }

    pub(super) async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ObjectInfo>> {
        let base = if prefix.is_empty() {
            self.prefix.clone()
        } else {
            self.full_key(prefix)
        };
        // Directory semantics, as on SFTP and local directories: `a` lists `a/…`.
        let list_prefix = if base.is_empty() {
            String::new()
        } else {
            format!("{base}/")
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = PAGE.min(limit - out.len());
            let answer = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&list_prefix)
                .max_keys(i32::try_from(page).unwrap_or(1000))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| failed(&format!("listing s3://{}/{list_prefix}", self.bucket), &e))?;
            let contents = answer.contents();
            for object in contents {
                let Some(key) = object.key() else { continue };
                let Some(relative) = key.strip_prefix(&strip) else {
                    continue;
                };
                out.push(ObjectInfo {
                    key: relative.to_string(),
                    size: object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            // Stop on the last page, and on a server that claims more but sends none.
            match answer.next_continuation_token() {
                Some(next) if answer.is_truncated() == Some(true) && !contents.is_empty() => {
                    token = Some(next.to_string());
                }
                _ => return Ok(out),
            }
        }
    }

    pub(super) async fn put_small(&self, key: &str, bytes: &[u8], overwrite: bool) -> Result<()> {
        let url = self.url(key);
        let exists_error = || {
            Error::storage(format!(
                "{url} already exists; not overwriting it (ask for overwrite to replace it)"
            ))
        };
        // If-None-Match is the atomic guard where the server honours it; the lookup
        // catches servers that ignore it (Garage 2.5 does, checked: a second
        // `PUT If-None-Match: *` answers 200 and replaces), leaving only a race between
        // two writers of the same key there.
        if !overwrite && self.exists(key).await? {
            return Err(exists_error());
        }
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_length(bytes.len() as i64)
            .content_type("application/octet-stream")
            .body(ByteStream::from(bytes.to_vec()));
        if !overwrite {
            request = request.if_none_match("*");
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if !overwrite && status(&e) == Some(412) => Err(exists_error()),
            Err(e) => Err(failed(&format!("writing {url}"), &e)),
        }
    }

    pub(super) async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        let url = self.url(key);
        let end = start + len - 1;
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(format!("bytes={start}-{end}"))
            .send()
            .await;
        let mut object = match answer {
            Ok(o) => o,
            // 416: the range starts at or beyond the end of the object.
            Err(e) if status(&e) == Some(416) => return Ok(Vec::new()),
            Err(e) if status(&e) == Some(404) => {
                return Err(
                    Error::storage(format!("{url} does not exist ({})", describe(&e)))
                        .classed(FailureClass::Missing),
                )
            }
            Err(e) => return Err(failed(&format!("reading {url}"), &e)),
        };
        if object.content_range().is_none() && start > 0 {
            return Err(Error::storage(format!(
                "reading {url}: the server ignored the byte range and sent the whole object"
            )));
        }
        let cap = usize::try_from(len).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        while let Some(chunk) = object.body.next().await {
            let chunk = chunk.map_err(|e| Error::storage(format!("reading {url}: {e}")))?;
            let room = cap - out.len();
            out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if out.len() >= cap {
                break;
            }
        }
        Ok(out)
    }

    pub(super) async fn delete(&self, key: &str) -> Result<DeleteOutcome> {
        // S3 answers a delete of a missing key with 204 as well: look first.
        if !self.exists(key).await? {
            return Ok(DeleteOutcome::Absent);
        }
        let url = self.url(key);
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| failed(&format!("deleting {url}"), &e))?;
        Ok(DeleteOutcome::Deleted)
    }

    /// A one-byte ranged GET rather than a HEAD: a HEAD's 404 has no body, so it cannot
    /// tell a missing key from a missing bucket, and a missing bucket must never make
    /// every object look "absent" to retention.
    pub(super) async fn exists(&self, key: &str) -> Result<bool> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range("bytes=0-0")
            .send()
            .await;
        match answer {
            Ok(_) => Ok(true),
            // An empty object: the range is unsatisfiable, but the object is there.
            Err(e) if status(&e) == Some(416) => Ok(true),
            Err(e)
                if status(&e) == Some(404)
                    && e.as_service_error().and_then(|se| se.code()) == Some("NoSuchKey") =>
            {
                Ok(false)
            }
            Err(e) => Err(failed(&format!("looking up {}", self.url(key)), &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::ReachPolicy;
    use dbcrate_core::secret::SecretString;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_name_the_policy_refuses_at_connect_time_is_classed_not_allowed() {
        // The name passed no up-front check (as after DNS rebinding): the S3 client's
        // resolver refuses it, and the refusal comes back inside the SDK's own errors.
        let options = StorageOptions {
            s3_endpoint: Some("http://localhost:9".into()),
            s3_path_style: true,
            s3_access_key_id: Some("GKtest".into()),
            s3_secret_access_key: Some(SecretString::new("not a secret".into())),
            reach: Some(Arc::new(ReachPolicy::default())),
            ..StorageOptions::default()
        };
        let destination = S3Destination::new(&options, "bucket", "").unwrap();
        let err = destination.list("", 10).await.unwrap_err();
        assert_eq!(err.class(), FailureClass::NotAllowed, "{err}");
    }
}
