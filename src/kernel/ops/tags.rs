//! Tags of several keys or secrets at once. Each call is authorised on every
//! resource it names (they are known only as it runs: an alias is a key).

use super::operation;
use crate::engine::tags::TagPage;
use crate::kernel::Names;

operation! {
    /// Tags added to every resource named, or to none.
    TagResources = TAG_RESOURCES -> () {
        resource_type: String = "ResourceType",
        resource_ids: Vec<String> = "ResourceId",
        tags: Vec<(String, String)> = "Tag",
    }
    names(_) { Names::found_while_running() }
    run(op, app, cx) { app.engine.tag_resources(&cx, &op.resource_type, &op.resource_ids, &op.tags).await? }
}

operation! {
    /// Tags removed from every resource named, or from none.
    UntagResources = UNTAG_RESOURCES -> () {
        resource_type: String = "ResourceType",
        resource_ids: Vec<String> = "ResourceId",
        tag_keys: Vec<String> = "TagKey",
        /// Every tag, when no TagKey is given.
        all: bool = "All",
    }
    names(_) { Names::found_while_running() }
    run(op, app, cx) {
        let UntagResources { resource_type, resource_ids, tag_keys, all } = op;
        app.engine.untag_resources(&cx, &resource_type, &resource_ids, &tag_keys, all).await?
    }
}

operation! {
    /// A page of the tags of the resources named (or of every resource of the
    /// type) that carry every tag of the filter.
    ListTagResources = LIST_TAG_RESOURCES -> TagPage {
        resource_type: String = "ResourceType",
        resource_ids: Vec<String> = "ResourceId",
        /// A tag with an empty value matches any value.
        tags: Vec<(String, String)> = "Tag",
        next_token: String = "NextToken",
    }
    names(_) { Names::found_while_running() }
    run(op, app, cx) {
        let ListTagResources { resource_type, resource_ids, tags, next_token } = op;
        app.engine.list_tag_resources(&cx, &resource_type, &resource_ids, &tags, &next_token)?
    }
}
