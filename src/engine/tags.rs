//! Tags of several keys or secrets at once (Alibaba's TagResources,
//! UntagResources and ListTagResources). A batch changes each resource as
//! TagResource or UntagResource changes one, and changes all of them or none.
//! Every resource a batch names goes into the call's trail, so the call is
//! authorised on each.

use std::collections::BTreeMap;

use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{KeyOp, key_arn};
use super::keys::add_tags;
use super::secrets::secret_arn;
use super::{Engine, Outcome, read_lock};
use crate::context::CallContext;

/// The most resources one batch may name, as Alibaba allows.
pub const MAX_BATCH_RESOURCES: usize = 50;
/// The most tags one batch may add, remove or filter by.
pub const MAX_BATCH_TAGS: usize = 20;
/// ListTagResources answers this many rows a page, as Alibaba does.
pub const TAG_ROWS_PER_PAGE: usize = 200;

/// What a batch tags: Alibaba's `ResourceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagTarget {
    Key,
    Secret,
}

impl TagTarget {
    pub fn parse(text: &str) -> KmsResult<TagTarget> {
        match text {
            "key" => Ok(TagTarget::Key),
            "secret" => Ok(TagTarget::Secret),
            "" => Err(KmsError::missing("ResourceType")),
            _ => Err(KmsError::invalid_because("ResourceType", "Use key or secret.")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TagTarget::Key => "key",
            TagTarget::Secret => "secret",
        }
    }
}

/// One tag of one resource, as ListTagResources lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub resource_id: String,
    pub resource_type: TagTarget,
    pub tag_key: String,
    pub tag_value: String,
}

/// A page of rows, and the token of the next page (empty after the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPage {
    pub rows: Vec<TagRow>,
    pub next_token: String,
}

/// What a batch does to each resource's tags.
enum TagChange<'a> {
    Add(&'a [(String, String)]),
    Remove(&'a [String]),
    RemoveAll,
}

impl TagChange<'_> {
    fn apply(&self, tags: &mut BTreeMap<String, String>) -> KmsResult<()> {
        match self {
            TagChange::Add(added) => add_tags(tags, added, "Tag"),
            TagChange::Remove(keys) => {
                for key in *keys {
                    tags.remove(key);
                }
                Ok(())
            }
            TagChange::RemoveAll => {
                tags.clear();
                Ok(())
            }
        }
    }
}

fn check_batch(resource_ids: &[String], required: bool) -> KmsResult<()> {
    if required && resource_ids.is_empty() {
        return Err(KmsError::missing("ResourceId"));
    }
    if resource_ids.len() > MAX_BATCH_RESOURCES {
        return Err(KmsError::invalid_because("ResourceId", "Name at most 50 resources."));
    }
    Ok(())
}

fn check_tag_count(count: usize, param: &str) -> KmsResult<()> {
    if count > MAX_BATCH_TAGS {
        return Err(KmsError::invalid_because(param, "Give at most 20 tags."));
    }
    Ok(())
}

impl Engine {
    pub async fn tag_resources(
        &self,
        cx: &CallContext,
        resource_type: &str,
        resource_ids: &[String],
        tags: &[(String, String)],
    ) -> KmsResult<Outcome<()>> {
        let target = TagTarget::parse(resource_type)?;
        check_batch(resource_ids, true)?;
        if tags.is_empty() {
            return Err(KmsError::missing("Tag"));
        }
        check_tag_count(tags.len(), "Tag")?;
        self.change_tags(cx, target, resource_ids, TagChange::Add(tags)).await
    }

    /// Removes `tag_keys` from each resource, or with `all` and no keys, every tag.
    pub async fn untag_resources(
        &self,
        cx: &CallContext,
        resource_type: &str,
        resource_ids: &[String],
        tag_keys: &[String],
        all: bool,
    ) -> KmsResult<Outcome<()>> {
        let target = TagTarget::parse(resource_type)?;
        check_batch(resource_ids, true)?;
        check_tag_count(tag_keys.len(), "TagKey")?;
        let change = match (tag_keys.is_empty(), all) {
            (false, _) => TagChange::Remove(tag_keys),
            (true, true) => TagChange::RemoveAll,
            (true, false) => return Err(KmsError::missing("TagKey")),
        };
        self.change_tags(cx, target, resource_ids, change).await
    }

    /// The tags of the resources named (every one of the type in the region
    /// when none is), of those that have every tag of `filter` (a tag with an
    /// empty value matches any value), a page of rows at a time from `next_token`.
    pub fn list_tag_resources(
        &self,
        cx: &CallContext,
        resource_type: &str,
        resource_ids: &[String],
        filter: &[(String, String)],
        next_token: &str,
    ) -> KmsResult<Outcome<TagPage>> {
        let target = TagTarget::parse(resource_type)?;
        check_batch(resource_ids, false)?;
        check_tag_count(filter.len(), "Tag")?;
        let start = match next_token {
            "" => 0,
            token => token.parse::<usize>().map_err(|_| KmsError::invalid("NextToken"))?,
        };
        let tagged = if resource_ids.is_empty() {
            self.every_tagged(cx, target)
        } else {
            self.note_batch(cx, target, resource_ids);
            let mut found = resource_ids
                .iter()
                .map(|named| self.tagged(cx, target, named))
                .collect::<KmsResult<Vec<(String, BTreeMap<String, String>)>>>()?;
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found.dedup_by(|a, b| a.0 == b.0);
            found
        };
        let matches = |tags: &BTreeMap<String, String>| {
            filter.iter().all(|(key, value)| tags.get(key).is_some_and(|v| value.is_empty() || v == value))
        };
        let rows: Vec<TagRow> = tagged
            .into_iter()
            .filter(|(_, tags)| matches(tags))
            .flat_map(|(resource_id, tags)| {
                tags.into_iter().map(move |(tag_key, tag_value)| TagRow {
                    resource_id: resource_id.clone(),
                    resource_type: target,
                    tag_key,
                    tag_value,
                })
            })
            .collect();
        let end = start.saturating_add(TAG_ROWS_PER_PAGE);
        let next_token = if end < rows.len() { end.to_string() } else { String::new() };
        let rows = rows.into_iter().skip(start).take(TAG_ROWS_PER_PAGE).collect();
        Ok(Outcome::read(TagPage { rows, next_token }))
    }

    /// Applies `change` to every resource named, each by its own path (a key's
    /// state table, a secret's recovery window), taking their gates in one
    /// order so that two batches cannot wait on each other.
    async fn change_tags(
        &self,
        cx: &CallContext,
        target: TagTarget,
        resource_ids: &[String],
        change: TagChange<'_>,
    ) -> KmsResult<Outcome<()>> {
        self.note_batch(cx, target, resource_ids);
        let mut ids = resource_ids
            .iter()
            .map(|named| match target {
                TagTarget::Key => Ok(self.resolve(cx, named, "ResourceId")?.snapshot().meta.key_id.clone()),
                TagTarget::Secret => self.secret_name(cx, named),
            })
            .collect::<KmsResult<Vec<String>>>()?;
        ids.sort();
        ids.dedup();
        let mut done = Outcome::write((), Vec::new(), Vec::new());
        for id in &ids {
            let Outcome { value: (), changes, gates, failed: _ } = match target {
                TagTarget::Key => {
                    let op = KeyOp::UpdateMetadata;
                    self.change_key(cx, (id, "ResourceId"), op, |key| {
                        let mut tags = key.meta.tags.clone();
                        change.apply(&mut tags)?;
                        Ok(key.with_meta(|m| m.tags = tags))
                    })
                    .await?
                    .map(drop)
                }
                TagTarget::Secret => self.change_secret_tags(cx, id, |tags| change.apply(tags)).await?,
            };
            done.changes.extend(changes);
            done.gates.extend(gates);
        }
        Ok(done)
    }

    /// Puts every resource a batch names into the call's trail, found or not.
    fn note_batch(&self, cx: &CallContext, target: TagTarget, resource_ids: &[String]) {
        for named in resource_ids {
            let arn = match target {
                TagTarget::Key => match self.resolve(cx, named, "ResourceId") {
                    Ok(slot) => slot.snapshot().meta.arn(),
                    Err(_) if named.starts_with("acs:") => named.clone(),
                    Err(_) => key_arn(&cx.region, &self.account_id, named),
                },
                TagTarget::Secret => match self.secret_name(cx, named) {
                    Ok(name) => secret_arn(&cx.region, &self.account_id, &name),
                    Err(_) => named.clone(),
                },
            };
            cx.trail.batch_resource(arn);
        }
    }

    /// A resource's id (a key's id, a secret's name) and tags.
    fn tagged(
        &self,
        cx: &CallContext,
        target: TagTarget,
        named: &str,
    ) -> KmsResult<(String, BTreeMap<String, String>)> {
        match target {
            TagTarget::Key => {
                let key = self.resolve(cx, named, "ResourceId")?.snapshot();
                Ok((key.meta.key_id.clone(), key.meta.tags.clone()))
            }
            TagTarget::Secret => {
                let name = self.secret_name(cx, named)?;
                let secret = self.secret(&cx.region, &name).ok_or(ErrorCode::ResourceNotFound)?;
                Ok((name, secret.tags.clone()))
            }
        }
    }

    /// Every key or secret of the caller's region with its tags, by id.
    fn every_tagged(&self, cx: &CallContext, target: TagTarget) -> Vec<(String, BTreeMap<String, String>)> {
        let mut all: Vec<(String, BTreeMap<String, String>)> = match target {
            TagTarget::Key => read_lock(&self.keys)
                .iter()
                .filter(|((region, _), _)| *region == cx.region)
                .map(|((_, key_id), slot)| (key_id.clone(), slot.snapshot().meta.tags.clone()))
                .collect(),
            TagTarget::Secret => read_lock(&self.secrets)
                .iter()
                .filter(|((region, _), _)| *region == cx.region)
                .map(|((_, name), secret)| (name.clone(), secret.tags.clone()))
                .collect(),
        };
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_adds_removes_or_clears_tags() {
        let mut tags = BTreeMap::new();
        TagChange::Add(&[("team".into(), "a".into())]).apply(&mut tags).unwrap();
        assert!(TagChange::Add(&[("acs:reserved".into(), "x".into())]).apply(&mut tags).is_err());
        let many: Vec<(String, String)> = (0..20).map(|n| (format!("k{n}"), String::new())).collect();
        assert!(TagChange::Add(&many).apply(&mut tags).unwrap_err().message.contains("20 tags"));
        let mut removed = BTreeMap::from([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())]);
        TagChange::Remove(&["a".to_owned()]).apply(&mut removed).unwrap();
        assert_eq!(removed.len(), 1);
        TagChange::RemoveAll.apply(&mut removed).unwrap();
        assert!(removed.is_empty());
    }

    #[test]
    fn resource_types_are_alibabas() {
        assert_eq!(TagTarget::parse("key").unwrap(), TagTarget::Key);
        assert_eq!(TagTarget::parse("secret").unwrap().as_str(), "secret");
        assert_eq!(TagTarget::parse("").unwrap_err().code, ErrorCode::MissingParameter);
        assert_eq!(TagTarget::parse("certificate").unwrap_err().code, ErrorCode::InvalidParameter);
    }
}
