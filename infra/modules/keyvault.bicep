// Key Vault for the app's secrets, in RBAC mode with purge protection: the client secret of
// the app registration, the UPN blind-index master key and the log publisher key. The app reads them as Key Vault
// references with its identity (Key Vault Secrets User, granted in roles.bicep).
param location string
param name string
param workspaceId string
@secure()
param clientSecret string
@secure()
param indexKey string
@secure()
param publisherKey string
param secretsExpireAt int
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption without a VNet resolves Key Vault references publicly; RBAC (Secrets User) guards reads
  // checkov:skip=CKV_AZURE_189: as above; a private endpoint comes with VNet integration (infra/README.md, "Network")
  // checkov:skip=CKV2_AZURE_32: as above
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enablePurgeProtection: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Flex Consumption without a virtual network resolves references over the public
      // endpoint; reads still need an Entra token with the Secrets User role.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource clientSecretEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'groupmgr-client-secret'
  properties: {
    value: clientSecret
    contentType: 'text/plain; Entra client secret of the GroupMgr app registration'
    attributes: { enabled: true, exp: secretsExpireAt }
  }
}

resource indexKeyEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'groupmgr-index-key'
  properties: {
    value: indexKey
    contentType: 'text/plain; base64 of 32 bytes, UPN blind-index master key'
    attributes: { enabled: true, exp: secretsExpireAt }
  }
}

resource publisherKeyEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'groupmgr-publisher-key'
  properties: {
    value: publisherKey
    contentType: 'text/plain; base64 of 32 bytes, tenant-log publisher key (HPKE Auth mode sender)'
    attributes: { enabled: true, exp: secretsExpireAt }
  }
}

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'audit', enabled: true }]
  }
}

output name string = vault.name
output clientSecretUri string = clientSecretEntry.properties.secretUri
output indexKeyUri string = indexKeyEntry.properties.secretUri
output publisherKeyUri string = publisherKeyEntry.properties.secretUri
