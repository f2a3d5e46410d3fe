//! The record tables of the store: one per kind of record, each a redb
//! table of JSON values under string keys.

use redb::TableDefinition;

/// The record tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Catalog,
    Guardrails,
    Backends,
    Deployments,
    Approvals,
    /// Deployments' registrations with the gateway.
    Gateway,
    /// Plugins uploaded through the API: manifest, versions, the active one.
    Plugins,
    /// The order rules run in, when set through the API (`policy_chain`, `approval_rules`).
    PluginOrder,
    /// Each remote catalog's last sync.
    CatalogSources,
    /// Every revision of each catalog entry, oldest first.
    CatalogHistory,
    /// Package entries' locks, by package, version and base image (`packages::lock::key`).
    PackageLocks,
    /// Signatures of images the host built and signed but did not push, by image id.
    ImageSignatures,
    /// What images install (`supply_chain::inventory`), by image id and by registry digest.
    ImageInventories,
    /// What server components are served with (`components::Kept`), by deployment.
    ServedComponents,
}

impl Table {
    /// Every table, each opened (created) when the store is.
    pub const ALL: [Table; 14] = [
        Table::Catalog,
        Table::Guardrails,
        Table::Backends,
        Table::Deployments,
        Table::Approvals,
        Table::Gateway,
        Table::Plugins,
        Table::PluginOrder,
        Table::CatalogSources,
        Table::CatalogHistory,
        Table::PackageLocks,
        Table::ImageSignatures,
        Table::ImageInventories,
        Table::ServedComponents,
    ];

    /// Its place in `ALL`.
    pub(super) fn index(self) -> usize {
        Table::ALL.iter().position(|t| *t == self).expect("every table is in ALL")
    }

    pub(super) fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(match self {
            Table::Catalog => "catalog",
            Table::Guardrails => "guardrails",
            Table::Backends => "backends",
            Table::Deployments => "deployments",
            Table::Approvals => "approvals",
            Table::Gateway => "gateway",
            Table::Plugins => "plugins",
            Table::PluginOrder => "plugin_order",
            Table::CatalogSources => "remote_catalogs",
            Table::CatalogHistory => "catalog_history",
            Table::PackageLocks => "package_locks",
            Table::ImageSignatures => "image_signatures",
            Table::ImageInventories => "image_inventories",
            Table::ServedComponents => "served_components",
        })
    }
}
