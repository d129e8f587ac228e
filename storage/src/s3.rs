//! S3-compatible object storage through one multipart upload per backup.
//!
//! Parts are all the same size (Cloudflare R2 requires it; only the last may be
//! smaller), chosen before the first byte from the database's size so that 10,000 parts
//! cover twice that size, never below 8 MiB. The object appears only when the upload
//! is completed — after pg_dump and the encoders succeeded — with `If-None-Match: *`
//! so that an existing backup is never replaced; a HEAD then confirms the size.
//! Anything else aborts the upload. Memory: one part being filled plus
//! [`MAX_PARTS_IN_FLIGHT`] parts uploading.

use crate::error::{Error, Result};
use crate::StorageOptions;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;
use tokio::task::JoinSet;

/// The smallest part: S3 allows 5 MiB; 8 MiB keeps the part count low for ordinary
/// databases at a small memory cost.
pub const MIN_PART_SIZE: u64 = 8 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// S3's limit on parts per upload.
pub const MAX_PARTS: u64 = 10_000;
/// Parts uploading at once while the next one fills.
pub const MAX_PARTS_IN_FLIGHT: usize = 2;

/// The part size for a database of `database_size` bytes: 10,000 parts must hold twice
/// the database (a custom-format dump compressed by zstd is almost always smaller than
/// the database, so the margin is wide), rounded up to a whole MiB, within S3's limits.
pub fn plan_part_size(database_size: u64) -> u64 {
    let needed = database_size.saturating_mul(2).div_ceil(MAX_PARTS);
    let mib = 1 << 20;
    needed
        .div_ceil(mib)
        .saturating_mul(mib)
        .clamp(MIN_PART_SIZE, MAX_PART_SIZE)
}

/// An S3 client for `options`, with the in-memory key of
/// [`StorageOptions::s3_access_key_id`] and [`StorageOptions::s3_secret_access_key`]
/// when given, else credentials from the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`).
pub fn client(options: &StorageOptions) -> Result<aws_sdk_s3::Client> {
    let credentials = credentials(options)?;
    check_ca_roots(options.s3_endpoint.as_deref())?;
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    let http = match &options.reach {
        // Every connection resolves through the policy: only checked addresses are used.
        Some(policy) => builder.build_with_resolver(crate::reach::PolicyResolver(policy.clone())),
        None => builder.build_https(),
    };
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .credentials_provider(credentials)
        .region(Region::new(
            options
                .s3_region
                .clone()
                .unwrap_or_else(|| "us-east-1".into()),
        ))
        .force_path_style(options.s3_path_style)
        // Default CRC32 trailers are not understood by every S3-compatible server.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = &options.s3_endpoint {
        config = config.endpoint_url(endpoint);
    }
    Ok(aws_sdk_s3::Client::from_conf(config.build()))
}

/// Refuses an https endpoint (or AWS itself, when no endpoint is given) on a host with
/// no CA certificates, before any request: the S3 client trusts only the system's roots
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the usual bundles under `/etc/ssl`), and without
/// any it would only fail each handshake with an unknown-issuer error. A static agent on
/// a minimal host (a scratch container, an empty root) is where this happens.
fn check_ca_roots(endpoint: Option<&str>) -> Result<()> {
    let https = endpoint.is_none_or(|e| {
        e.get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    });
    if https && rustls_native_certs::load_native_certs().certs.is_empty() {
        return Err(Error::invalid_input(
            "no CA certificates found for TLS to the S3 endpoint (looked at SSL_CERT_FILE, \
             SSL_CERT_DIR and the system's certificate bundle under /etc/ssl); install the \
             ca-certificates package or set SSL_CERT_FILE to a PEM file of trusted roots",
        ));
    }
    Ok(())
}

/// The credentials for `options`: in memory if given (both parts), else the environment.
fn credentials(options: &StorageOptions) -> Result<Credentials> {
    match (&options.s3_access_key_id, &options.s3_secret_access_key) {
        (Some(key_id), Some(secret)) => {
            if key_id.is_empty() || secret.is_empty() {
                return Err(Error::invalid_input(
                    "the S3 access key id or secret access key is empty; give the \
                     destination's full key",
                ));
            }
            return Ok(Credentials::new(
                key_id.clone(),
                secret.expose_secret().to_string(),
                None,
                None,
                "dbcrate-in-memory",
            ));
        }
        (Some(_), None) => {
            return Err(Error::invalid_input(
                "an S3 access key id was given without its secret access key; give both",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::invalid_input(
                "an S3 secret access key was given without its access key id; give both",
            ))
        }
        (None, None) => {}
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(key_id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
    else {
        return Err(Error::invalid_input(
            "S3 needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ));
    };
    Ok(Credentials::new(
        key_id,
        secret,
        var("AWS_SESSION_TOKEN"),
        None,
        "env",
    ))
}

/// One line for any SDK error: HTTP status, S3 error code and message, or the transport
/// failure (DNS, TCP, TLS) with its causes.
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    match err {
        SdkError::ServiceError(se) if se.err().code().is_some() => format!(
            "HTTP {}: {} {}",
            se.raw().status().as_u16(),
            se.err().code().unwrap_or("?"),
            se.err().message().unwrap_or("")
        ),
        other => DisplayErrorContext(other).to_string(),
    }
}

/// A multipart upload in progress.
pub struct S3Sink {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    part_size: usize,
    buffer: BytesMut,
    next_part: i32,
    in_flight: JoinSet<Result<CompletedPart>>,
    done: Vec<CompletedPart>,
}

impl S3Sink {
    /// Starts a multipart upload of `bucket/key`.
    pub async fn create(options: &StorageOptions, bucket: &str, key: &str) -> Result<Self> {
        let client = client(options)?;
        let part_size = plan_part_size(options.expected_size);
        tracing::info!(
            part_size_mib = part_size >> 20,
            database_bytes = options.expected_size,
            "S3 part size chosen (10,000 parts cover twice the database)"
        );
        let upload = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type("application/octet-stream")
            .send()
            .await
            .map_err(|e| {
                Error::storage(format!(
                    "cannot start the upload to s3://{bucket}/{key}: {}",
                    describe(&e)
                ))
            })?;
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| Error::storage("the S3 server returned no upload id"))?
            .to_string();
        Ok(Self {
            client,
            bucket: bucket.into(),
            key: key.into(),
            upload_id,
            part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
            buffer: BytesMut::new(),
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
        })
    }

    /// Buffers `chunk`, uploading every full part.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.buffer.extend_from_slice(&chunk);
        while self.buffer.len() >= self.part_size {
            let part = self.buffer.split_to(self.part_size).freeze();
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn send_part(&mut self, body: Bytes) -> Result<()> {
        if i64::from(self.next_part) > MAX_PARTS as i64 {
            return Err(Error::storage(format!(
                "the backup outgrew 10,000 parts of {} MiB: the database grew far beyond \
                 its size when the backup started",
                self.part_size >> 20
            )));
        }
        while self.in_flight.len() >= MAX_PARTS_IN_FLIGHT {
            self.collect_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body));
        self.in_flight.spawn(async move {
            // UNSIGNED-PAYLOAD: signing would hash every part a second time (we already
            // hash the whole ciphertext). Integrity comes from age's AEAD, the recorded
            // SHA-256 and the HEAD size check; TLS protects real endpoints in transit.
            let out = request
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| {
                    Error::storage(format!("uploading part {number}: {}", describe(&e)))
                })?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build())
        });
        Ok(())
    }

    async fn collect_one(&mut self) -> Result<()> {
        if let Some(joined) = self.in_flight.join_next().await {
            let part = joined.map_err(|e| Error::storage(format!("upload task failed: {e}")))??;
            self.done.push(part);
        }
        Ok(())
    }

    /// Uploads the last part, completes the upload without overwriting, and checks the
    /// stored size with a HEAD.
    pub async fn commit(mut self, expected_len: u64) -> Result<String> {
        let url = format!("s3://{}/{}", self.bucket, self.key);
        let result = self.finish_parts().await;
        if let Err(e) = result {
            self.abort().await;
            return Err(e.note("the upload was aborted, nothing was stored"));
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .if_none_match("*")
            .send()
            .await;
        if let Err(e) = completed {
            // Some servers answer 200 with a body the SDK cannot parse although the object
            // was created: let the HEAD below decide. Any other failure aborts.
            let status = e.raw_response().map(|r| r.status().as_u16());
            if status != Some(200) {
                let message = describe(&e);
                self.abort().await;
                return Err(Error::storage(format!(
                    "completing the upload of {url}: {message}; the upload was aborted, \
                     nothing was stored"
                )));
            }
            tracing::warn!(error = %describe(&e), "complete answered 200 with an error; checking with HEAD");
        }
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
            .map_err(|e| {
                Error::storage(format!("checking {url} after upload: {}", describe(&e)))
            })?;
        let stored = head.content_length().unwrap_or(-1);
        if u64::try_from(stored).ok() != Some(expected_len) {
            return Err(Error::storage(format!(
                "{url} holds {stored} bytes after upload, expected {expected_len}"
            )));
        }
        Ok(url)
    }

    async fn finish_parts(&mut self) -> Result<()> {
        if !self.buffer.is_empty() || self.next_part == 1 {
            let last = std::mem::take(&mut self.buffer).freeze();
            self.send_part(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        Ok(())
    }

    /// Stops the uploads in flight and aborts the multipart upload, so no object appears.
    pub async fn abort(mut self) {
        self.in_flight.shutdown().await;
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            tracing::warn!(
                error = %describe(&e),
                "could not abort the multipart upload; a lifecycle rule \
                 AbortIncompleteMultipartUpload removes its parts later"
            );
        }
    }
}

/// Opens `bucket/key` as a stream.
pub async fn open(
    options: &StorageOptions,
    bucket: &str,
    key: &str,
) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
    let client = client(options)?;
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            Error::storage(format!("cannot read s3://{bucket}/{key}: {}", describe(&e)))
        })?;
    Ok(Box::new(object.body.into_async_read()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_covers_twice_the_database_in_10000_parts() {
        assert_eq!(plan_part_size(0), MIN_PART_SIZE);
        assert_eq!(plan_part_size(2 << 30), MIN_PART_SIZE);
        // 100 GiB: 200 GiB / 10,000 = 20.48 MiB → 21 MiB.
        assert_eq!(plan_part_size(100 << 30), 21 << 20);
        for size in [1u64 << 30, 123_456_789_012, 10 << 40] {
            let part = plan_part_size(size);
            assert!(part * MAX_PARTS >= 2 * size, "{size}");
            assert_eq!(part % (1 << 20), 0);
        }
        assert_eq!(plan_part_size(u64::MAX), MAX_PART_SIZE);
    }
}
