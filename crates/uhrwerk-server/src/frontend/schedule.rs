//! The schedule RPCs: request checks, paging and list filtering around `schedules::Scheduler`.

use prost::Message;
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;
use uhrwerk_visibility::{Attr, CmpOp, Expr, Literal, payload};

use super::Frontend;
use crate::error::{Error, Result};

const TOKEN_MAGIC: &[u8] = b"uws1";
const DEFAULT_PAGE: usize = 1000;

#[derive(Clone, PartialEq, prost::Message)]
struct ScheduleToken {
    #[prost(string, tag = "1")]
    after_id: String,
    #[prost(string, tag = "2")]
    query: String,
}

fn check_id(schedule_id: &str) -> Result<()> {
    if schedule_id.is_empty() {
        return Err(Error::InvalidArgument("ScheduleId is not set on request.".into()));
    }
    Ok(())
}

impl Frontend {
    pub(super) async fn create_schedule(&self, req: pb::CreateScheduleRequest) -> Result<pb::CreateScheduleResponse> {
        self.namespaces.check(&req.namespace)?;
        super::validate::workflow_id(self.engine.limits(), &req.schedule_id)?;
        self.schedules.create(req).await
    }

    pub(super) async fn describe_schedule(
        &self,
        req: pb::DescribeScheduleRequest,
    ) -> Result<pb::DescribeScheduleResponse> {
        self.namespaces.check(&req.namespace)?;
        check_id(&req.schedule_id)?;
        self.schedules.describe(&req.namespace, &req.schedule_id).await
    }

    pub(super) async fn update_schedule(&self, req: pb::UpdateScheduleRequest) -> Result<pb::UpdateScheduleResponse> {
        self.namespaces.check(&req.namespace)?;
        check_id(&req.schedule_id)?;
        self.schedules.update(req).await?;
        Ok(pb::UpdateScheduleResponse::default())
    }

    pub(super) async fn patch_schedule(&self, req: pb::PatchScheduleRequest) -> Result<pb::PatchScheduleResponse> {
        self.namespaces.check(&req.namespace)?;
        check_id(&req.schedule_id)?;
        self.schedules.patch(req).await?;
        Ok(pb::PatchScheduleResponse::default())
    }

    pub(super) async fn delete_schedule(&self, req: pb::DeleteScheduleRequest) -> Result<pb::DeleteScheduleResponse> {
        self.namespaces.check(&req.namespace)?;
        check_id(&req.schedule_id)?;
        self.schedules.delete(&req.namespace, &req.schedule_id).await?;
        Ok(pb::DeleteScheduleResponse::default())
    }

    pub(super) async fn schedule_matching_times(
        &self,
        req: pb::ListScheduleMatchingTimesRequest,
    ) -> Result<pb::ListScheduleMatchingTimesResponse> {
        self.namespaces.check(&req.namespace)?;
        check_id(&req.schedule_id)?;
        let times = self.schedules.matching_times(req).await?;
        Ok(pb::ListScheduleMatchingTimesResponse { start_time: times.into_iter().map(time::timestamp).collect() })
    }

    /// Schedules of a namespace that match a query over their search attributes.
    async fn matching_schedules(
        &self,
        namespace: &str,
        query: &str,
    ) -> Result<Vec<uhrwerk_proto::temporal::api::schedule::v1::ScheduleListEntry>> {
        self.namespaces.check(namespace)?;
        let mut custom = self.engine.search_attributes().custom(namespace);
        custom.insert(SCHEDULE_ID.to_string(), uhrwerk_visibility::ValueType::Keyword);
        let parsed = uhrwerk_visibility::parse(query, &custom).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if let Some(column) = parsed.filter.as_ref().and_then(first_column) {
            return Err(Error::InvalidArgument(format!(
                "invalid query filter for schedules: cannot filter on \"{column}\""
            )));
        }
        let all = self.schedules.list(namespace).await;
        Ok(all
            .into_iter()
            .filter(|(entry, attrs)| parsed.filter.as_ref().is_none_or(|f| matches(f, &entry.schedule_id, attrs)))
            .map(|(entry, _)| entry)
            .collect())
    }

    pub(super) async fn list_schedules(&self, req: pb::ListSchedulesRequest) -> Result<pb::ListSchedulesResponse> {
        let after = if req.next_page_token.is_empty() {
            String::new()
        } else {
            req.next_page_token
                .strip_prefix(TOKEN_MAGIC)
                .and_then(|b| ScheduleToken::decode(b).ok())
                .filter(|t| t.query == req.query)
                .map(|t| t.after_id)
                .ok_or_else(|| Error::InvalidArgument("Invalid NextPageToken.".into()))?
        };
        let page = match usize::try_from(req.maximum_page_size) {
            Ok(n) if n > 0 => n.min(DEFAULT_PAGE),
            _ => DEFAULT_PAGE,
        };
        let matching = self.matching_schedules(&req.namespace, &req.query).await?;
        let rest: Vec<_> = matching.into_iter().filter(|e| after.is_empty() || e.schedule_id > after).collect();
        let more = rest.len() > page;
        let schedules: Vec<_> = rest.into_iter().take(page).collect();
        let next_page_token = match schedules.last() {
            Some(last) if more => {
                let mut out = TOKEN_MAGIC.to_vec();
                ScheduleToken { after_id: last.schedule_id.clone(), query: req.query.clone() }.encode_raw(&mut out);
                out
            }
            _ => Vec::new(),
        };
        Ok(pb::ListSchedulesResponse { schedules, next_page_token })
    }

    pub(super) async fn count_schedules(&self, req: pb::CountSchedulesRequest) -> Result<pb::CountSchedulesResponse> {
        let count = self.matching_schedules(&req.namespace, &req.query).await?.len() as i64;
        Ok(pb::CountSchedulesResponse { count, groups: Vec::new() })
    }
}

/// The attribute naming a schedule's id in schedule list queries.
const SCHEDULE_ID: &str = "ScheduleId";

/// The first run column a filter names; schedules have none of them.
fn first_column(expr: &Expr) -> Option<String> {
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => first_column(a).or_else(|| first_column(b)),
        Expr::Not(a) => first_column(a),
        Expr::Compare { attr, .. }
        | Expr::In { attr, .. }
        | Expr::Between { attr, .. }
        | Expr::StartsWith { attr, .. }
        | Expr::IsNull { attr, .. } => matches!(attr, Attr::Column(_)).then(|| attr.name().to_string()),
    }
}

/// Evaluates a list filter against a schedule: its id (`ScheduleId`) and its search
/// attributes. Attributes it does not have match nothing but `!=` and `IS NULL`.
fn matches(expr: &Expr, schedule_id: &str, attrs: &common_pb::SearchAttributes) -> bool {
    let values = |attr: &Attr| -> Vec<Literal> {
        match attr {
            Attr::Stored { name, .. } if name == SCHEDULE_ID => vec![Literal::Str(schedule_id.to_string())],
            Attr::Column(_) => Vec::new(),
            Attr::Stored { name, ty } => {
                attrs.indexed_fields.get(name).and_then(|p| payload::decode(*ty, p).ok()).unwrap_or_default()
            }
        }
    };
    match expr {
        Expr::And(a, b) => matches(a, schedule_id, attrs) && matches(b, schedule_id, attrs),
        Expr::Or(a, b) => matches(a, schedule_id, attrs) || matches(b, schedule_id, attrs),
        Expr::Not(a) => !matches(a, schedule_id, attrs),
        Expr::Compare { attr, op, value, .. } => {
            let vals = values(attr);
            match op {
                CmpOp::Ne => !vals.iter().any(|v| compare(v, value) == Some(std::cmp::Ordering::Equal)),
                _ => vals.iter().any(|v| {
                    compare(v, value).is_some_and(|o| match op {
                        CmpOp::Eq => o.is_eq(),
                        CmpOp::Gt => o.is_gt(),
                        CmpOp::Ge => o.is_ge(),
                        CmpOp::Lt => o.is_lt(),
                        CmpOp::Le => o.is_le(),
                        CmpOp::Ne => o.is_ne(),
                    })
                }),
            }
        }
        Expr::In { attr, values: set, negated, .. } => {
            let found = values(attr).iter().any(|v| set.iter().any(|s| compare(v, s).is_some_and(|o| o.is_eq())));
            found != *negated
        }
        Expr::Between { attr, low, high, negated, .. } => {
            let inside = values(attr)
                .iter()
                .any(|v| compare(v, low).is_some_and(|o| o.is_ge()) && compare(v, high).is_some_and(|o| o.is_le()));
            inside != *negated
        }
        Expr::StartsWith { attr, prefix, negated, .. } => {
            let found = values(attr).iter().any(|v| matches!(v, Literal::Str(s) if s.starts_with(prefix.as_str())));
            found != *negated
        }
        Expr::IsNull { attr, negated, .. } => values(attr).is_empty() != *negated,
    }
}

fn compare(a: &Literal, b: &Literal) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Literal::Str(x), Literal::Str(y)) => Some(x.cmp(y)),
        (Literal::Int(x), Literal::Int(y)) | (Literal::Time(x), Literal::Time(y)) => Some(x.cmp(y)),
        (Literal::Double(x), Literal::Double(y)) => x.partial_cmp(y),
        (Literal::Int(x), Literal::Double(y)) => (*x as f64).partial_cmp(y),
        (Literal::Double(x), Literal::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Literal::Bool(x), Literal::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
