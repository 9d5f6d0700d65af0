//! SharePoint sites, lists and list items through Graph (graph-settings-activity.md §5): where
//! GroupMgr keeps its per-group data, in the customer's own tenant.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Graph, GraphError, Idempotency, Page, enc};

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

/// A list item with its column values.
#[derive(Debug, Clone, Deserialize)]
pub struct ListItem {
    pub id: String,
    #[serde(default)]
    pub fields: Map<String, Value>,
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
        let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
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
    pub async fn create_list(&self, site: &str, body: &Value) -> Result<SpList, GraphError> {
        self.send(
            Method::POST,
            &self.url(&format!("/sites/{}/lists", enc(site))),
            Some(body),
            &[],
            Idempotency::Once,
        )
        .await?
        .json()
    }

    /// First page of a list's items with their fields.
    pub async fn list_items(&self, site: &str, list: &str, top: u32) -> Result<Page<ListItem>, GraphError> {
        let url = format!(
            "{}?expand=fields&$top={top}",
            self.url(&format!("/sites/{}/lists/{}/items", enc(site), enc(list)))
        );
        self.get_json(&url, &[]).await
    }

    /// The items whose indexed text column `column` equals `value`.
    pub async fn find_items(
        &self,
        site: &str,
        list: &str,
        column: &str,
        value: &str,
    ) -> Result<Vec<ListItem>, GraphError> {
        let filter = format!("fields/{column} eq '{}'", value.replace('\'', "''"));
        let url = format!(
            "{}?expand=fields&$filter={}",
            self.url(&format!("/sites/{}/lists/{}/items", enc(site), enc(list))),
            enc(&filter)
        );
        self.collect_all(&url, &[]).await
    }

    pub async fn create_item(
        &self,
        site: &str,
        list: &str,
        fields: &Map<String, Value>,
    ) -> Result<ListItem, GraphError> {
        let body = json!({ "fields": fields });
        self.send(
            Method::POST,
            &self.url(&format!("/sites/{}/lists/{}/items", enc(site), enc(list))),
            Some(&body),
            &[],
            Idempotency::Once,
        )
        .await?
        .json()
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
            &self.url(&format!(
                "/sites/{}/lists/{}/items/{}/fields",
                enc(site),
                enc(list),
                enc(item)
            )),
            Some(&Value::Object(fields.clone())),
            &[],
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }
}
