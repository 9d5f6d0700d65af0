// GroupMgr in one resource group: the Function App (custom handler, Flex Consumption) with its
// system-assigned identity, its storage account (identity only, no shared keys), Azure SQL
// (Entra-only), Key Vault (RBAC, purge protection) for the app's secrets, and Application
// Insights on a Log Analytics workspace. Every role assignment is the least the app needs.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/<env>.bicepparam
//
// See infra/README.md for the whole sequence, including the SQL step after deployment.
targetScope = 'resourceGroup'

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Short environment name, part of every resource name.')
@allowed(['dev', 'test', 'prod'])
param environmentName string

@description('Base name of the resources (lower-case letters and digits).')
@minLength(3)
@maxLength(12)
param baseName string = 'groupmgr'

@description('Application (client) id of the multi-tenant GroupMgr app registration (infra/app-registration).')
param clientId string

@description('Client ids of the GroupMgr UI, comma-separated: the only applications whose user tokens the API accepts (GROUPMGR_ALLOWED_CLIENTS).')
param allowedClients string

@description('The client secret of that app registration; stored in Key Vault only.')
@secure()
param clientSecret string

@description('Base64 of 32 random bytes (openssl rand -base64 32): the UPN blind-index master key; stored in Key Vault only.')
@secure()
param indexKey string

@description('GroupMgr\'s own X25519 private key, base64 of 32 random bytes (openssl rand -base64 32): the publisher key, with which tenant log data keys are sealed (HPKE Auth mode) so that readers can tell our entries from forged ones; stored in Key Vault only. Print its public half with `groupmgr keys publisher`.')
@secure()
param publisherKey string

@description('Our own tenant id, sent to the Office 365 Management Activity API as PublisherIdentifier.')
param publisherTenantId string

@description('Entra group (display name) that administers Azure SQL; operators, never the app.')
param sqlAdminGroupName string

@description('Object id of that Entra group.')
param sqlAdminGroupObjectId string

@description('Microsoft cloud of the customers: public, usgov, usgovhigh, dod or china.')
@allowed(['public', 'usgov', 'usgovhigh', 'dod', 'china'])
param cloud string = 'public'

@description('Expiry of the Key Vault secrets (Unix seconds); rotate them before it. Default: one year after deployment.')
param secretsExpireAt int = dateTimeToEpoch(dateTimeAdd(utcNow(), 'P1Y'))

@description('Addresses that receive Defender for SQL alerts.')
param securityAlertEmails array

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

param tags object = {}

var suffix = uniqueString(resourceGroup().id, environmentName)
var names = {
  workspace: 'log-${baseName}-${environmentName}'
  insights: 'appi-${baseName}-${environmentName}'
  storage: take('st${baseName}${environmentName}${suffix}', 24)
  vault: take('kv-${baseName}-${environmentName}-${suffix}', 24)
  sqlServer: 'sql-${baseName}-${environmentName}-${suffix}'
  database: baseName
  plan: 'plan-${baseName}-${environmentName}'
  app: 'func-${baseName}-${environmentName}-${suffix}'
}
var allTags = union(tags, { application: 'GroupMgr', environment: environmentName })

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    workspaceName: names.workspace
    insightsName: names.insights
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    name: names.storage
    workspaceId: monitoring.outputs.workspaceId
    tags: allTags
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    name: names.vault
    workspaceId: monitoring.outputs.workspaceId
    clientSecret: clientSecret
    indexKey: indexKey
    publisherKey: publisherKey
    secretsExpireAt: secretsExpireAt
    tags: allTags
  }
}

module sql 'modules/sql.bicep' = {
  name: 'sql'
  params: {
    location: location
    serverName: names.sqlServer
    databaseName: names.database
    adminGroupName: sqlAdminGroupName
    adminGroupObjectId: sqlAdminGroupObjectId
    alertEmails: securityAlertEmails
    workspaceId: monitoring.outputs.workspaceId
    tags: allTags
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    planName: names.plan
    appName: names.app
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    insightsConnectionString: monitoring.outputs.insightsConnectionString
    maximumInstanceCount: maximumInstanceCount
    appSettings: {
      GROUPMGR_CLIENT_ID: clientId
      GROUPMGR_ALLOWED_CLIENTS: allowedClients
      GROUPMGR_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${vault.outputs.clientSecretUri})'
      GROUPMGR_INDEX_KEY: '@Microsoft.KeyVault(SecretUri=${vault.outputs.indexKeyUri})'
      GROUPMGR_PUBLISHER_KEY: '@Microsoft.KeyVault(SecretUri=${vault.outputs.publisherKeyUri})'
      GROUPMGR_CLOUD: cloud
      GROUPMGR_PUBLISHER_ID: publisherTenantId
      GROUPMGR_DATABASE: 'Server=tcp:${sql.outputs.serverFqdn},1433;Database=${names.database};Authentication=Active Directory Managed Identity;Encrypt=strict'
      GROUPMGR_SHAREPOINT_SITE: '/sites/GroupMgr'
    }
    tags: allTags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: app.outputs.principalId
    storageAccountName: storage.outputs.name
    vaultName: vault.outputs.name
    insightsName: monitoring.outputs.insightsName
  }
}

output functionAppName string = app.outputs.name
output apiBaseUrl string = 'https://${app.outputs.defaultHostName}/api'
output sqlServerFqdn string = sql.outputs.serverFqdn
output sqlDatabaseName string = names.database
output keyVaultName string = vault.outputs.name
output storageAccountName string = storage.outputs.name
