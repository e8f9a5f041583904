use crate::model::{self, ResourceRow, RESOURCE_COLUMNS};
use crate::{Result, Store};

impl Store {
    /// The tenant's resources, optionally of one kind, by kind and name.
    pub async fn resources(&self, tenant_id: &str, kind: Option<&str>) -> Result<Vec<ResourceRow>> {
        let rows = match kind {
            Some(kind) => {
                let sql = format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources WHERE tenant_id = $1 AND kind = $2 ORDER BY name"
                );
                sqlx::query(&sql).bind(tenant_id).bind(kind).fetch_all(&self.pool).await?
            }
            None => {
                let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE tenant_id = $1 ORDER BY kind, name");
                sqlx::query(&sql).bind(tenant_id).fetch_all(&self.pool).await?
            }
        };
        Ok(rows.iter().map(model::resource).collect::<sqlx::Result<_>>()?)
    }

    pub async fn resource(&self, tenant_id: &str, id: &str) -> Result<Option<ResourceRow>> {
        let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| model::resource(&r)).transpose()?)
    }

    pub async fn resource_by_name(&self, tenant_id: &str, kind: &str, name: &str) -> Result<Option<ResourceRow>> {
        let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE tenant_id = $1 AND kind = $2 AND name = $3");
        let row = sqlx::query(&sql).bind(tenant_id).bind(kind).bind(name).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| model::resource(&r)).transpose()?)
    }
}
