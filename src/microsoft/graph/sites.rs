//! SharePoint sites, lists and list items through Graph (graph-settings-activity.md §5): where
//! GroupMgr keeps its per-group data, in the customer's own tenant. Callers name lists, columns
//! and values; the URLs, `$filter`s and `$batch` items are built here.

use std::collections::HashMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{BatchRequest, Graph, GraphError, MAX_BATCH, Page, enc, odata_string};
use crate::microsoft::retry::Idempotency;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    pub id: String,
    pub web_url: Option<String>,
    pub site_collection: Option<SiteCollection>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SiteCollection {
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpList {
    pub id: String,
    pub display_name: Option<String>,
}

/// A list item with its column values and its version (`eTag`), which a conditional update
/// names in `If-Match` (Graph "Update listItem": 412 when the item changed meanwhile).
#[derive(Debug, Clone, Deserialize)]
pub struct ListItem {
    pub id: String,
    #[serde(rename = "eTag", default)]
    pub e_tag: Option<String>,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// A column of an existing list (its internal name).
#[derive(Debug, Clone, Deserialize)]
pub struct ListColumn {
    pub name: String,
}

/// A column of a list to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// Single line of text (at most 255 characters); `unique` columns are indexed and enforce
    /// unique values.
    Text {
        unique: bool,
    },
    /// Multiple lines of text (plain, up to 63,999 characters).
    Note,
    Number,
    Boolean,
    DateTime,
    Choice(&'static [&'static str]),
}

/// A generic list to create: name, description, columns (besides the built-in `Title`).
#[derive(Debug, Clone)]
pub struct ListDefinition {
    pub display_name: &'static str,
    pub description: &'static str,
    pub columns: Vec<Column>,
}

impl ListDefinition {
    /// The `POST /sites/{site}/lists` body.
    fn body(&self) -> Value {
        let columns: Vec<Value> = self.columns.iter().map(Column::body).collect();
        json!({
            "displayName": self.display_name,
            "description": self.description,
            "list": {"template": "genericList"},
            "columns": columns,
        })
    }
}

impl Column {
    /// A `columnDefinition` (graph-settings-activity.md §5).
    fn body(&self) -> Value {
        let name = self.name;
        match &self.kind {
            ColumnKind::Text { unique: true } => {
                json!({"name": name, "text": {}, "indexed": true, "enforceUniqueValues": true})
            }
            ColumnKind::Text { unique: false } => json!({"name": name, "text": {}}),
            ColumnKind::Note => json!({"name": name, "text": {"allowMultipleLines": true, "textType": "plain"}}),
            ColumnKind::Number => json!({"name": name, "number": {}}),
            ColumnKind::Boolean => json!({"name": name, "boolean": {}}),
            ColumnKind::DateTime => json!({"name": name, "dateTime": {}}),
            ColumnKind::Choice(choices) => json!({"name": name, "choice": {"choices": choices}}),
        }
    }
}

/// One write of `write_items` (each answered with the item's new eTag, when Graph gives it): a new item, or new values for an existing one — only if it is
/// still at version `if_match`, when given.
#[derive(Debug, Clone)]
pub enum ItemWrite {
    Create(Map<String, Value>),
    Update {
        item: String,
        fields: Map<String, Value>,
        if_match: Option<String>,
    },
}

impl<'a> Graph<'a> {
    /// The tenant's root site (its `siteCollection.hostname` is the SharePoint host).
    pub async fn root_site(&self) -> Result<Site, GraphError> {
        self.get_json(
            &format!("{}?$select=id,webUrl,siteCollection", self.url("/sites/root")),
            &[],
        )
        .await
    }

    /// A site by server-relative path, e.g. `/sites/GroupMgr` on `contoso.sharepoint.com`.
    pub async fn site_by_path(&self, hostname: &str, path: &str) -> Result<Site, GraphError> {
        let path = path.split('/').map(enc).collect::<Vec<_>>().join("/");
        self.get_json(&self.url(&format!("/sites/{}:{path}", enc(hostname))), &[])
            .await
    }

    /// The list with this display name on the site, if it exists.
    pub async fn find_list(&self, site: &str, name: &str) -> Result<Option<SpList>, GraphError> {
        let filter = format!("displayName eq {}", odata_string(name));
        let url = format!(
            "{}?$filter={}&$select=id,displayName",
            self.url(&format!("/sites/{}/lists", enc(site))),
            enc(&filter)
        );
        let page: Page<SpList> = self.get_json(&url, &[]).await?;
        Ok(page.value.into_iter().next())
    }

    /// `POST /sites/{site}/lists`. Sent once; a retry after a lost answer would make a second
    /// list, so the caller looks the list up again instead.
    pub async fn create_list(&self, site: &str, definition: &ListDefinition) -> Result<SpList, GraphError> {
        self.send(
            Method::POST,
            &self.url(&format!("/sites/{}/lists", enc(site))),
            Some(&definition.body()),
            &[],
            Idempotency::Once,
        )
        .await?
        .json()
    }

    fn items_url(&self, site: &str, list: &str) -> String {
        format!("/sites/{}/lists/{}/items", enc(site), enc(list))
    }

    /// Every item of a list with its fields, `page_size` to a page.
    /// Every item of a list, each mapped by `f` as its page arrives (a list of 100,000 rows is
    /// never held as raw items).
    pub async fn all_items<U>(
        &self,
        site: &str,
        list: &str,
        page_size: u32,
        f: impl FnMut(ListItem) -> Option<U>,
    ) -> Result<Vec<U>, GraphError> {
        let url = format!(
            "{}?expand=fields&$top={page_size}",
            self.url(&self.items_url(site, list))
        );
        self.collect_all_mapped(&url, &[], f).await
    }

    /// The items whose indexed text column `column` equals `value`.
    pub async fn find_items(
        &self,
        site: &str,
        list: &str,
        column: &str,
        value: &str,
    ) -> Result<Vec<ListItem>, GraphError> {
        let filter = format!("fields/{column} eq {}", odata_string(value));
        let url = format!(
            "{}?expand=fields&$filter={}",
            self.url(&self.items_url(site, list)),
            enc(&filter)
        );
        self.collect_all(&url, &[]).await
    }

    /// `find_items` for many values, 20 lookups to a `$batch`: for each value, its items or
    /// the error its lookup ended with.
    pub async fn find_items_batched(
        &self,
        site: &str,
        list: &str,
        column: &str,
        values: &[String],
    ) -> Result<HashMap<String, Result<Vec<ListItem>, GraphError>>, GraphError> {
        let base = self.items_url(site, list);
        let mut out = HashMap::new();
        for chunk in values.chunks(MAX_BATCH) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .map(|value| {
                    let filter = format!("fields/{column} eq {}", odata_string(value));
                    BatchRequest::get(format!("{base}?expand=fields&$filter={}", enc(&filter)))
                })
                .collect();
            for (value, answer) in chunk.iter().zip(self.batch(&requests).await?) {
                let items = answer.into_result::<Page<ListItem>>().map(|p| p.value);
                out.insert(value.clone(), items);
            }
        }
        Ok(out)
    }

    /// Creates and updates items, 20 to a `$batch`; the outcome of each write, in order.
    /// Both kinds may be resent: an update sets absolute values, and a repeated create of a
    /// list with a unique column meets it (409), which the caller turns into an update.
    pub async fn write_items(
        &self,
        site: &str,
        list: &str,
        writes: &[ItemWrite],
    ) -> Result<Vec<Result<Option<String>, GraphError>>, GraphError> {
        let base = self.items_url(site, list);
        let mut out = Vec::with_capacity(writes.len());
        for chunk in writes.chunks(MAX_BATCH) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .map(|w| match w {
                    ItemWrite::Update { item, fields, if_match } => {
                        let mut r = BatchRequest::write(
                            "PATCH",
                            format!("{base}/{}/fields", enc(item)),
                            Value::Object(fields.clone()),
                            true,
                        );
                        if let Some(etag) = if_match {
                            r.headers.push(("If-Match", etag.clone()));
                        }
                        r
                    }
                    ItemWrite::Create(fields) => {
                        BatchRequest::write("POST", base.clone(), json!({ "fields": fields }), true)
                    }
                })
                .collect();
            for answer in self.batch(&requests).await? {
                // The item's new version: `@odata.etag` of the fields an update answers with,
                // `eTag` of the item a create answers with (when Graph includes them).
                out.push(answer.into_result::<Value>().map(|v| {
                    v.get("@odata.etag")
                        .or_else(|| v.get("eTag"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                }));
            }
        }
        Ok(out)
    }

    /// The columns of a list.
    pub async fn list_columns(&self, site: &str, list: &str) -> Result<Vec<ListColumn>, GraphError> {
        let url = format!(
            "{}?$select=name",
            self.url(&format!("/sites/{}/lists/{}/columns", enc(site), enc(list)))
        );
        self.collect_all(&url, &[]).await
    }

    /// Adds to an existing list the `columns` it lacks (a list made by an older version).
    pub async fn add_missing_columns(&self, site: &str, list: &str, columns: &[Column]) -> Result<(), GraphError> {
        let present: Vec<String> = self
            .list_columns(site, list)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        for column in columns {
            if !present.iter().any(|p| p == column.name) {
                self.add_column(site, list, column).await?;
            }
        }
        Ok(())
    }

    /// `POST …/lists/{id}/columns`: adds a column to an existing list. A repeat meets the
    /// column already there (409), which is the outcome wanted.
    pub async fn add_column(&self, site: &str, list: &str, column: &Column) -> Result<(), GraphError> {
        match self
            .send(
                Method::POST,
                &self.url(&format!("/sites/{}/lists/{}/columns", enc(site), enc(list))),
                Some(&column.body()),
                &[],
                Idempotency::Safe,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `PATCH …/items/{id}/fields` with absolute values.
    pub async fn update_item(
        &self,
        site: &str,
        list: &str,
        item: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), GraphError> {
        self.send(
            Method::PATCH,
            &self.url(&format!("{}/{}/fields", self.items_url(site, list), enc(item))),
            Some(&Value::Object(fields.clone())),
            &[],
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }
}
