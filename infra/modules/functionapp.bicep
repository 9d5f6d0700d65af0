// The GroupMgr Function App: Linux, Flex Consumption (FC1), runtime `custom` (the custom
// handler in host.json), system-assigned identity for everything it reaches — storage,
// Key Vault references, Azure SQL, Application Insights. HTTPS only, TLS 1.2+, FTP(S) and
// basic publishing credentials off.
param location string
param planName string
param appName string
param storageAccountName string
param deploymentContainerUrl string
param insightsConnectionString string
param maximumInstanceCount int
@description('GroupMgr settings (ARCHITECTURE.md §3); secrets as Key Vault references.')
param appSettings object
param tags object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: {
    reserved: true
    zoneRedundant: true
  }
}

var platformSettings = {
  // Identity-based host storage (blob, queue), as the Functions runtime documents it.
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  APPLICATIONINSIGHTS_CONNECTION_STRING: insightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: this is the public API the GroupMgr UI calls; every route but /api/health requires an Entra token
  // checkov:skip=CKV_AZURE_17: callers authenticate with Entra ID bearer tokens; browsers cannot present client certificates
  // checkov:skip=CKV_AZURE_212: Flex Consumption has no worker count; zone redundancy keeps two or more always-ready instances
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support the platform health check; /api/health serves monitors
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: 'SystemAssigned'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for s in items(union(platformSettings, appSettings)): { name: s.key, value: s.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      // Flex Consumption takes the worker runtime here (it rejects the
      // FUNCTIONS_WORKER_RUNTIME app setting): `custom` is the custom handler.
      runtime: { name: 'custom', version: '1.0' }
    }
  }
}

// No publishing with user names and passwords: deployments use Entra ID.
resource ftp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scm 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

output name string = app.name
output principalId string = app.identity.principalId
output defaultHostName string = app.properties.defaultHostName
