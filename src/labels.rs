//! The annotation and label keys the tool reads and writes: which revision an image was built
//! from, which version an index publishes, and which project and pipeline published it (what
//! orders publishers). Their own file: the builder hints, the manifest reader, the ordering rule
//! and the settings all name them, and none of those should need another for it.

/// The annotation (and config label) that says which source revision an image was built from.
pub(crate) const REVISION: &str = "org.opencontainers.image.revision";
/// The annotation that says which version (`CI_COMMIT_TAG`) an index publishes.
pub(crate) const VERSION: &str = "org.opencontainers.image.version";
/// Our annotation: the GitLab project id (`CI_PROJECT_ID`) of the pipeline that published an
/// index (what orders publishers, with `PIPELINE`; see `order`).
pub(crate) const PROJECT: &str = "com.gitlab.multiarch.project.id";
/// Our annotation: the GitLab pipeline id (`CI_PIPELINE_ID`, instance-wide and increasing) that
/// published an index; as an image's config label, the pipeline that built it (what names a stale
/// image of another revision a later pipeline's build).
pub(crate) const PIPELINE: &str = "com.gitlab.multiarch.pipeline.id";
