//! The search attribute registry: custom attributes per namespace (kept in memory, written
//! through to the store), validation of the attributes a start or upsert sets, and the typed
//! values the store indexes for a run.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_storage::{AttrRow, MetadataStore};
use uhrwerk_visibility::{Attr, Catalog, ValueType, payload, system_attr};

use crate::error::{Error, Result};

/// Temporal's `limit.searchAttributesNumberOfKeys`.
pub const MAX_KEYS: usize = 100;
/// Temporal's `limit.searchAttributesSizeOfValue` (bytes).
pub const MAX_VALUE_BYTES: usize = 2 * 1024;
/// Temporal's `limit.searchAttributesTotalSize` (bytes).
pub const MAX_TOTAL_BYTES: usize = 40 * 1024;

type Registry = HashMap<String, BTreeMap<String, ValueType>>;

#[derive(Clone)]
pub struct SearchAttributes {
    store: Arc<dyn MetadataStore>,
    by_namespace: Arc<RwLock<Registry>>,
}

/// The custom attributes of one namespace at one moment, for parsing a query.
pub struct NamespaceCatalog(BTreeMap<String, ValueType>);

impl Catalog for NamespaceCatalog {
    fn custom_type(&self, name: &str) -> Option<ValueType> {
        self.0.get(name).copied()
    }
}

impl SearchAttributes {
    /// Loads the registry and registers `ensure` in each of `namespaces` (the
    /// `--search-attribute` flag), keeping attributes that already exist.
    pub async fn load(
        store: Arc<dyn MetadataStore>,
        namespaces: &[String],
        ensure: &[(String, ValueType)],
    ) -> Result<Self> {
        let mut registry = Registry::new();
        for (namespace, name, ty) in store.search_attributes().await? {
            registry.entry(namespace).or_default().insert(name, ty);
        }
        let this = Self { store, by_namespace: Arc::new(RwLock::new(registry)) };
        for namespace in namespaces {
            this.add(namespace, ensure).await?;
        }
        Ok(this)
    }

    /// Reads the registry again from the store (a cluster node sees attributes that other
    /// nodes registered or removed).
    pub async fn refresh(&self) -> Result<()> {
        let mut registry = Registry::new();
        for (namespace, name, ty) in self.store.search_attributes().await? {
            registry.entry(namespace).or_default().insert(name, ty);
        }
        *self.by_namespace.write().expect("search attributes lock") = registry;
        Ok(())
    }

    pub fn catalog(&self, namespace: &str) -> NamespaceCatalog {
        NamespaceCatalog(self.custom(namespace))
    }

    pub fn custom(&self, namespace: &str) -> BTreeMap<String, ValueType> {
        self.by_namespace.read().expect("search attributes lock").get(namespace).cloned().unwrap_or_default()
    }

    /// Custom attributes of every namespace, for `GetSearchAttributes` (which names none).
    pub fn all_custom(&self) -> BTreeMap<String, ValueType> {
        let registry = self.by_namespace.read().expect("search attributes lock");
        registry.values().flat_map(|attrs| attrs.iter().map(|(k, v)| (k.clone(), *v))).collect()
    }

    /// Registers custom attributes. As in Temporal's SQL visibility, an attribute that already
    /// exists is left as it is.
    pub async fn add(&self, namespace: &str, attrs: &[(String, ValueType)]) -> Result<()> {
        for (name, _) in attrs {
            check_name(name)?;
        }
        let new: Vec<(String, ValueType)> = {
            let registry = self.by_namespace.read().expect("search attributes lock");
            let existing = registry.get(namespace);
            attrs.iter().filter(|(name, _)| existing.is_none_or(|e| !e.contains_key(name))).cloned().collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        self.store.put_search_attributes(namespace, &new).await?;
        let mut registry = self.by_namespace.write().expect("search attributes lock");
        let entry = registry.entry(namespace.to_string()).or_default();
        for (name, ty) in new {
            entry.insert(name, ty);
        }
        Ok(())
    }

    pub async fn remove(&self, namespace: &str, names: &[String]) -> Result<()> {
        for name in names {
            if system_attr(name).is_some() {
                return Err(Error::InvalidArgument(format!("Unable to remove non-custom search attributes: {name}.")));
            }
        }
        self.store.remove_search_attributes(namespace, names).await?;
        let mut registry = self.by_namespace.write().expect("search attributes lock");
        if let Some(entry) = registry.get_mut(namespace) {
            for name in names {
                entry.remove(name);
            }
        }
        Ok(())
    }

    fn type_of(&self, namespace: &str, name: &str) -> Option<(Attr, ValueType)> {
        system_attr(name).or_else(|| {
            let registry = self.by_namespace.read().expect("search attributes lock");
            let ty = registry.get(namespace)?.get(name).copied()?;
            Some((Attr::Stored { name: name.to_string(), ty }, ty))
        })
    }

    /// Checks attributes a client or a workflow sets; the message is Temporal's.
    pub fn validate(&self, namespace: &str, attrs: &common_pb::SearchAttributes) -> std::result::Result<(), String> {
        if attrs.indexed_fields.len() > MAX_KEYS {
            return Err(format!("number of search attributes {} exceeds limit {MAX_KEYS}", attrs.indexed_fields.len()));
        }
        let mut total = 0;
        for (name, value) in &attrs.indexed_fields {
            let Some((attr, ty)) = self.type_of(namespace, name) else {
                return Err(format!("Namespace {namespace} has no mapping defined for search attribute {name}"));
            };
            if matches!(attr, Attr::Column(_)) {
                return Err(format!("{name} attribute can't be set in SearchAttributes"));
            }
            // A nil value removes the attribute (an upsert) or is dropped (a start).
            if uhrwerk_core::kernel::is_nil_payload(value) {
                continue;
            }
            payload::decode_named(name, ty, value).map_err(|e| e.to_string())?;
            let size = value.data.len();
            if size > MAX_VALUE_BYTES {
                return Err(format!("search attribute {name} value size {size} exceeds size limit {MAX_VALUE_BYTES}"));
            }
            total += size + name.len();
        }
        if total > MAX_TOTAL_BYTES {
            return Err(format!("total size of search attributes {total} exceeds size limit {MAX_TOTAL_BYTES}"));
        }
        Ok(())
    }

    /// Adds the `type` metadata a payload lacks (clients such as the CLI send plain JSON), so that
    /// SDKs decode the values with their types, as Temporal returns them.
    pub fn add_types(&self, namespace: &str, attrs: &mut common_pb::SearchAttributes) {
        for (name, value) in attrs.indexed_fields.iter_mut() {
            if value.metadata.contains_key("type") {
                continue;
            }
            if let Some((_, ty)) = self.type_of(namespace, name) {
                value.metadata.insert("type".into(), ty.name().as_bytes().to_vec());
            }
        }
    }

    /// The typed values the store indexes for a run's attributes. Attributes that are not
    /// registered (any more) or do not decode are left out of the index, not out of the run.
    pub fn index(&self, namespace: &str, attrs: &common_pb::SearchAttributes) -> Vec<AttrRow> {
        let mut rows = Vec::new();
        for (name, value) in &attrs.indexed_fields {
            let Some((Attr::Stored { .. }, ty)) = self.type_of(namespace, name) else { continue };
            match payload::decode(ty, value) {
                Ok(values) if !values.is_empty() => rows.push(AttrRow { name: name.clone(), ty, values }),
                _ => {}
            }
        }
        rows
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("Search attribute name is not set.".into()));
    }
    if system_attr(name).is_some() {
        return Err(Error::InvalidArgument(format!("Search attribute {name} is reserved by system.")));
    }
    if name.len() > 255 || name.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidArgument(format!("Search attribute name {name} is not valid.")));
    }
    Ok(())
}
