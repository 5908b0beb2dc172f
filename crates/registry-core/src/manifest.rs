//! Reading manifests: which media type a body is, what it references, and
//! the descriptor it is listed under as a referrer. The manifest and index
//! types are `oci-spec`'s; Docker schema 2 manifests and lists share their
//! shape.

use std::collections::HashMap;

use crate::media_types::{DOCKER_SCHEMA1, OCI_INDEX, OCI_MANIFEST, is_image_manifest, is_index};
use crate::{Digest, ErrorCode, RegistryError};
use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

/// Manifests larger than this are refused.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// What the registry needs to know of a pushed manifest.
#[derive(Clone, Debug)]
pub struct ParsedManifest {
    pub media_type: String,
    /// Config and layers, which must be blobs of the repository.
    pub blobs: Vec<Digest>,
    /// Index entries, which must be manifests of the repository.
    pub manifests: Vec<Digest>,
    pub subject: Option<Digest>,
    /// `artifactType`, or for an image the config's media type, as the
    /// referrers API reports it.
    pub artifact_type: Option<String>,
    pub annotations: Option<HashMap<String, String>>,
}

/// Just the fields that tell what kind of manifest a body is.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u64>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::new(ErrorCode::ManifestInvalid, message)
}

/// The media type of a stored manifest, for `Content-Type`: its own
/// `mediaType`, else what its shape says.
pub fn media_type_of(body: &[u8]) -> String {
    match serde_json::from_slice::<Probe>(body) {
        Ok(probe) => match probe.media_type {
            Some(media_type) => media_type,
            None => inferred_media_type(&probe).to_owned(),
        },
        Err(_) => "application/octet-stream".to_owned(),
    }
}

fn inferred_media_type(probe: &Probe) -> &'static str {
    if probe.schema_version == Some(1) {
        DOCKER_SCHEMA1[1]
    } else if probe.manifests.is_some() {
        OCI_INDEX
    } else {
        OCI_MANIFEST
    }
}

/// Parses and checks a pushed manifest. `content_type` is the request's
/// `Content-Type` without parameters.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ParsedManifest, RegistryError> {
    let probe: Probe = serde_json::from_slice(body)
        .map_err(|error| invalid(format!("manifest is not a JSON object: {error}")))?;
    let generic = |value: &str| matches!(value, "application/json" | "application/octet-stream");
    let header = content_type.filter(|value| !value.is_empty() && !generic(value));
    let media_type = match (probe.media_type.as_deref(), header) {
        (Some(body), Some(header)) if body != header => {
            return Err(invalid(format!(
                "mediaType {body:?} in the manifest does not match Content-Type {header:?}"
            )));
        }
        (Some(body), _) => body.to_owned(),
        (None, Some(header)) => header.to_owned(),
        (None, None) => inferred_media_type(&probe).to_owned(),
    };
    if probe.schema_version != Some(2) {
        return Err(invalid(
            "only schemaVersion 2 manifests are accepted (Docker schema 1 is deprecated)",
        ));
    }
    if DOCKER_SCHEMA1.contains(&media_type.as_str()) {
        return Err(invalid("Docker schema 1 manifests are not accepted"));
    }
    if is_index(&media_type) || (!is_image_manifest(&media_type) && probe.manifests.is_some()) {
        parse_index(media_type, body)
    } else if is_image_manifest(&media_type) || probe.config.is_some() {
        parse_image(media_type, body)
    } else {
        Err(invalid(format!(
            "media type {media_type:?} is neither an image manifest nor an index"
        )))
    }
}

fn parse_image(media_type: String, body: &[u8]) -> Result<ParsedManifest, RegistryError> {
    let manifest: ImageManifest = serde_json::from_slice(body)
        .map_err(|error| invalid(format!("invalid image manifest: {error}")))?;
    let mut blobs = vec![digest_of(manifest.config())?];
    for layer in manifest.layers() {
        if !is_foreign(layer) {
            blobs.push(digest_of(layer)?);
        }
    }
    let artifact_type = manifest
        .artifact_type()
        .as_ref()
        .map(MediaType::to_string)
        .or_else(|| Some(manifest.config().media_type().to_string()));
    Ok(ParsedManifest {
        media_type,
        blobs,
        manifests: Vec::new(),
        subject: manifest.subject().as_ref().map(digest_of).transpose()?,
        artifact_type,
        annotations: manifest.annotations().clone(),
    })
}

fn parse_index(media_type: String, body: &[u8]) -> Result<ParsedManifest, RegistryError> {
    let index: ImageIndex = serde_json::from_slice(body)
        .map_err(|error| invalid(format!("invalid image index: {error}")))?;
    let manifests = index
        .manifests()
        .iter()
        .map(digest_of)
        .collect::<Result<_, _>>()?;
    Ok(ParsedManifest {
        media_type,
        blobs: Vec::new(),
        manifests,
        subject: index.subject().as_ref().map(digest_of).transpose()?,
        artifact_type: index.artifact_type().as_ref().map(MediaType::to_string),
        annotations: index.annotations().clone(),
    })
}

/// Layers that live elsewhere (`urls`) and are not pushed to registries.
fn is_foreign(layer: &Descriptor) -> bool {
    let media_type = layer.media_type().to_string();
    let foreign = media_type.contains("foreign") || media_type.contains("nondistributable");
    foreign && layer.urls().as_ref().is_some_and(|urls| !urls.is_empty())
}

fn digest_of(descriptor: &Descriptor) -> Result<Digest, RegistryError> {
    let text = descriptor.digest().to_string();
    text.parse()
        .map_err(|error| invalid(format!("descriptor digest {text:?}: {error}")))
}

/// The descriptor under which a manifest is listed by the referrers API.
pub fn referrer_descriptor(
    parsed: &ParsedManifest,
    digest: &Digest,
    body: &Bytes,
) -> Result<Bytes, RegistryError> {
    let oci_digest: oci_spec::image::Digest = digest
        .to_string()
        .parse()
        .map_err(|_| invalid("manifest digest cannot be described"))?;
    let mut descriptor = Descriptor::new(
        MediaType::from(parsed.media_type.as_str()),
        body.len() as u64,
        oci_digest,
    );
    descriptor.set_artifact_type(parsed.artifact_type.as_deref().map(MediaType::from));
    descriptor.set_annotations(parsed.annotations.clone());
    let json = serde_json::to_vec(&descriptor)
        .map_err(|error| invalid(format!("descriptor cannot be encoded: {error}")))?;
    Ok(Bytes::from(json))
}

/// Every digest a stored manifest names, for garbage collection: blobs,
/// child manifests and subject. Unlike [`parse`], it also reads Docker
/// schema 1 manifests (their `fsLayers`), which older registries hold.
pub fn references(body: &[u8]) -> Result<ParsedManifest, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Schema1 {
        #[serde(rename = "fsLayers", default)]
        fs_layers: Vec<Schema1Layer>,
    }
    #[derive(serde::Deserialize)]
    struct Schema1Layer {
        #[serde(rename = "blobSum")]
        blob_sum: Digest,
    }
    let probe: Probe = serde_json::from_slice(body)
        .map_err(|error| invalid(format!("manifest is not a JSON object: {error}")))?;
    if probe.schema_version == Some(1) {
        let schema1: Schema1 = serde_json::from_slice(body)
            .map_err(|error| invalid(format!("invalid schema 1 manifest: {error}")))?;
        return Ok(ParsedManifest {
            media_type: DOCKER_SCHEMA1[1].to_owned(),
            blobs: schema1
                .fs_layers
                .into_iter()
                .map(|layer| layer.blob_sum)
                .collect(),
            manifests: Vec::new(),
            subject: None,
            artifact_type: None,
            annotations: None,
        });
    }
    parse(None, body)
}
