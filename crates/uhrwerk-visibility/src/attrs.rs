//! The search attribute catalog: value types, the predefined (system) attributes and name resolution.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use temporalio_protos::temporal::api::enums::v1::IndexedValueType;

/// The type of a search attribute, as Temporal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueType {
    Text,
    Keyword,
    Int,
    Double,
    Bool,
    Datetime,
    KeywordList,
}

impl ValueType {
    /// Every type, in `IndexedValueType` order.
    pub const ALL: [ValueType; 7] = [
        ValueType::Text,
        ValueType::Keyword,
        ValueType::Int,
        ValueType::Double,
        ValueType::Bool,
        ValueType::Datetime,
        ValueType::KeywordList,
    ];

    /// The name Temporal prints (CLI, payload `type` metadata): "Text", "Keyword", ...
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Text => "Text",
            ValueType::Keyword => "Keyword",
            ValueType::Int => "Int",
            ValueType::Double => "Double",
            ValueType::Bool => "Bool",
            ValueType::Datetime => "Datetime",
            ValueType::KeywordList => "KeywordList",
        }
    }

    /// Parses one of the seven Temporal CLI spellings, case-insensitively.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// The numeric value of `temporal.api.enums.v1.IndexedValueType`.
    pub fn to_indexed(self) -> i32 {
        let v = match self {
            ValueType::Text => IndexedValueType::Text,
            ValueType::Keyword => IndexedValueType::Keyword,
            ValueType::Int => IndexedValueType::Int,
            ValueType::Double => IndexedValueType::Double,
            ValueType::Bool => IndexedValueType::Bool,
            ValueType::Datetime => IndexedValueType::Datetime,
            ValueType::KeywordList => IndexedValueType::KeywordList,
        };
        v as i32
    }

    /// The inverse of [`ValueType::to_indexed`]; `None` for UNSPECIFIED and unknown values.
    pub fn from_indexed(v: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.to_indexed() == v)
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Columns the store keeps for every run; everything else is a "stored attribute" kept as typed rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SystemColumn {
    WorkflowId,
    RunId,
    WorkflowType,
    StartTime,
    ExecutionTime,
    CloseTime,
    ExecutionStatus,
    TaskQueue,
    HistoryLength,
    HistorySizeBytes,
    ExecutionDuration,
    StateTransitionCount,
    ParentWorkflowId,
    ParentRunId,
    RootWorkflowId,
    RootRunId,
}

impl SystemColumn {
    /// Every column.
    pub const ALL: [SystemColumn; 16] = [
        SystemColumn::WorkflowId,
        SystemColumn::RunId,
        SystemColumn::WorkflowType,
        SystemColumn::StartTime,
        SystemColumn::ExecutionTime,
        SystemColumn::CloseTime,
        SystemColumn::ExecutionStatus,
        SystemColumn::TaskQueue,
        SystemColumn::HistoryLength,
        SystemColumn::HistorySizeBytes,
        SystemColumn::ExecutionDuration,
        SystemColumn::StateTransitionCount,
        SystemColumn::ParentWorkflowId,
        SystemColumn::ParentRunId,
        SystemColumn::RootWorkflowId,
        SystemColumn::RootRunId,
    ];

    /// The search attribute name of the column (e.g. "WorkflowId").
    pub fn name(self) -> &'static str {
        match self {
            SystemColumn::WorkflowId => "WorkflowId",
            SystemColumn::RunId => "RunId",
            SystemColumn::WorkflowType => "WorkflowType",
            SystemColumn::StartTime => "StartTime",
            SystemColumn::ExecutionTime => "ExecutionTime",
            SystemColumn::CloseTime => "CloseTime",
            SystemColumn::ExecutionStatus => "ExecutionStatus",
            SystemColumn::TaskQueue => "TaskQueue",
            SystemColumn::HistoryLength => "HistoryLength",
            SystemColumn::HistorySizeBytes => "HistorySizeBytes",
            SystemColumn::ExecutionDuration => "ExecutionDuration",
            SystemColumn::StateTransitionCount => "StateTransitionCount",
            SystemColumn::ParentWorkflowId => "ParentWorkflowId",
            SystemColumn::ParentRunId => "ParentRunId",
            SystemColumn::RootWorkflowId => "RootWorkflowId",
            SystemColumn::RootRunId => "RootRunId",
        }
    }

    /// The type of the column as a search attribute.
    pub fn value_type(self) -> ValueType {
        match self {
            SystemColumn::StartTime | SystemColumn::ExecutionTime | SystemColumn::CloseTime => ValueType::Datetime,
            SystemColumn::HistoryLength
            | SystemColumn::HistorySizeBytes
            | SystemColumn::ExecutionDuration
            | SystemColumn::StateTransitionCount => ValueType::Int,
            _ => ValueType::Keyword,
        }
    }

    /// Exact-case lookup by search attribute name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for SystemColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a search attribute lives: a fixed column of the run, or a typed row keyed by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attr {
    Column(SystemColumn),
    Stored { name: String, ty: ValueType },
}

impl Attr {
    /// The search attribute name as the user spells it.
    pub fn name(&self) -> &str {
        match self {
            Attr::Column(c) => c.name(),
            Attr::Stored { name, .. } => name,
        }
    }
}

/// The predefined attributes the real server lists, in the order it lists them.
pub const SYSTEM_ATTRIBUTES: &[(&str, ValueType)] = &[
    ("BatcherNamespace", ValueType::Keyword),
    ("BatcherUser", ValueType::Keyword),
    ("BinaryChecksums", ValueType::KeywordList),
    ("BuildIds", ValueType::KeywordList),
    ("CloseTime", ValueType::Datetime),
    ("ExecutionDuration", ValueType::Int),
    ("ExecutionStatus", ValueType::Keyword),
    ("ExecutionTime", ValueType::Datetime),
    ("HistoryLength", ValueType::Int),
    ("HistorySizeBytes", ValueType::Int),
    ("ParentRunId", ValueType::Keyword),
    ("ParentWorkflowId", ValueType::Keyword),
    ("RootRunId", ValueType::Keyword),
    ("RootWorkflowId", ValueType::Keyword),
    ("RunId", ValueType::Keyword),
    ("StartTime", ValueType::Datetime),
    ("StateTransitionCount", ValueType::Int),
    ("TaskQueue", ValueType::Keyword),
    ("TemporalChangeVersion", ValueType::KeywordList),
    ("TemporalExternalPayloadCount", ValueType::Int),
    ("TemporalExternalPayloadSizeBytes", ValueType::Int),
    ("TemporalNamespaceDivision", ValueType::Keyword),
    ("TemporalPauseInfo", ValueType::KeywordList),
    ("TemporalReportedProblems", ValueType::KeywordList),
    ("TemporalSchedulePaused", ValueType::Bool),
    ("TemporalScheduledById", ValueType::Keyword),
    ("TemporalScheduledStartTime", ValueType::Datetime),
    ("TemporalUsedWorkerDeploymentVersions", ValueType::KeywordList),
    ("TemporalWorkerDeployment", ValueType::Keyword),
    ("TemporalWorkerDeploymentVersion", ValueType::Keyword),
    ("TemporalWorkflowVersioningBehavior", ValueType::Keyword),
    ("WorkflowId", ValueType::Keyword),
    ("WorkflowType", ValueType::Keyword),
];

/// Looks a predefined attribute up by its exact (case-sensitive) name, as Temporal does.
pub fn system_attr(name: &str) -> Option<(Attr, ValueType)> {
    let &(canonical, ty) = SYSTEM_ATTRIBUTES.iter().find(|(n, _)| *n == name)?;
    let attr = match SystemColumn::from_name(canonical) {
        Some(col) => Attr::Column(col),
        None => Attr::Stored { name: canonical.to_owned(), ty },
    };
    Some((attr, ty))
}

/// The custom search attributes of one namespace.
pub trait Catalog {
    /// The type of the custom attribute `name` (exact case), if the namespace registered it.
    fn custom_type(&self, name: &str) -> Option<ValueType>;
}

/// A catalog with no custom attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoCustomAttributes;

impl Catalog for NoCustomAttributes {
    fn custom_type(&self, _name: &str) -> Option<ValueType> {
        None
    }
}

impl<S: std::hash::BuildHasher> Catalog for HashMap<String, ValueType, S> {
    fn custom_type(&self, name: &str) -> Option<ValueType> {
        self.get(name).copied()
    }
}

impl Catalog for BTreeMap<String, ValueType> {
    fn custom_type(&self, name: &str) -> Option<ValueType> {
        self.get(name).copied()
    }
}

impl<C: Catalog + ?Sized> Catalog for &C {
    fn custom_type(&self, name: &str) -> Option<ValueType> {
        (**self).custom_type(name)
    }
}

/// Looks names up: system attributes first, then the namespace's custom ones.
pub fn resolve(catalog: &dyn Catalog, name: &str) -> Option<(Attr, ValueType)> {
    if let Some(found) = system_attr(name) {
        return Some(found);
    }
    let ty = catalog.custom_type(name)?;
    Some((Attr::Stored { name: name.to_owned(), ty }, ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_type_names_round_trip() {
        for t in ValueType::ALL {
            assert_eq!(ValueType::from_name(t.name()), Some(t));
            assert_eq!(ValueType::from_name(&t.name().to_uppercase()), Some(t));
            assert_eq!(ValueType::from_name(&t.name().to_lowercase()), Some(t));
            assert_eq!(ValueType::from_indexed(t.to_indexed()), Some(t));
            assert_eq!(t.to_string(), t.name());
        }
        assert_eq!(ValueType::from_name("String"), None);
        assert_eq!(ValueType::from_name(""), None);
        assert_eq!(ValueType::from_indexed(0), None);
        assert_eq!(ValueType::from_indexed(8), None);
        assert_eq!(ValueType::from_indexed(-1), None);
    }

    #[test]
    fn indexed_values_match_the_proto_enum() {
        assert_eq!(ValueType::Text.to_indexed(), 1);
        assert_eq!(ValueType::Keyword.to_indexed(), 2);
        assert_eq!(ValueType::Int.to_indexed(), 3);
        assert_eq!(ValueType::Double.to_indexed(), 4);
        assert_eq!(ValueType::Bool.to_indexed(), 5);
        assert_eq!(ValueType::Datetime.to_indexed(), 6);
        assert_eq!(ValueType::KeywordList.to_indexed(), 7);
    }

    #[test]
    fn system_attribute_list_is_sorted_and_complete() {
        assert_eq!(SYSTEM_ATTRIBUTES.len(), 33);
        for pair in SYSTEM_ATTRIBUTES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        // Every column is a system attribute of the same type.
        for col in SystemColumn::ALL {
            let (attr, ty) = system_attr(col.name()).expect("column listed");
            assert_eq!(attr, Attr::Column(col));
            assert_eq!(ty, col.value_type());
            assert_eq!(SystemColumn::from_name(col.name()), Some(col));
        }
    }

    #[test]
    fn system_attr_is_case_sensitive_and_stored_when_not_a_column() {
        assert_eq!(system_attr("workflowid"), None);
        assert_eq!(
            system_attr("BuildIds"),
            Some((Attr::Stored { name: "BuildIds".into(), ty: ValueType::KeywordList }, ValueType::KeywordList))
        );
        assert_eq!(system_attr("TemporalSchedulePaused").map(|(_, t)| t), Some(ValueType::Bool));
    }

    #[test]
    fn resolve_prefers_system_attributes() {
        let mut cat = HashMap::new();
        cat.insert("CustomKeywordField".to_string(), ValueType::Keyword);
        cat.insert("WorkflowId".to_string(), ValueType::Int);
        assert_eq!(resolve(&cat, "WorkflowId"), Some((Attr::Column(SystemColumn::WorkflowId), ValueType::Keyword)));
        assert_eq!(
            resolve(&cat, "CustomKeywordField"),
            Some((Attr::Stored { name: "CustomKeywordField".into(), ty: ValueType::Keyword }, ValueType::Keyword))
        );
        assert_eq!(resolve(&cat, "customkeywordfield"), None);
        assert_eq!(resolve(&NoCustomAttributes, "Foo"), None);
        let bt: BTreeMap<String, ValueType> = [("X".to_string(), ValueType::Bool)].into();
        assert_eq!(resolve(&bt, "X").map(|(_, t)| t), Some(ValueType::Bool));
        assert_eq!(Attr::Column(SystemColumn::RunId).name(), "RunId");
    }
}
