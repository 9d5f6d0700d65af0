// Azure SQL for GroupMgr's own data (tenants, blind-indexed users, sealed logs): Entra-only
// authentication (no SQL logins at all), TLS 1.2+, auditing and Defender alerts to Log
// Analytics. The Function App's identity becomes a contained user after deployment (README).
param location string
param serverName string
param databaseName string
param adminGroupName string
param adminGroupObjectId string
param workspaceId string
@description('Where Defender for SQL sends its alerts.')
param alertEmails array
param tags object

resource server 'Microsoft.Sql/servers@2023-08-01-preview' = {
  // checkov:skip=CKV_AZURE_113: Flex Consumption without a VNet has no fixed egress; Entra-only logins of contained users guard access
  // checkov:skip=CKV2_AZURE_45: a private endpoint comes with VNet integration (infra/README.md, "Network")
  name: serverName
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: adminGroupName
      sid: adminGroupObjectId
      principalType: 'Group'
      tenantId: subscription().tenantId
    }
  }
}

// Flex Consumption has no fixed outbound addresses without a virtual network: allow Azure
// services (the documented 0.0.0.0 rule). Logins still need an Entra token of a contained user.
resource azureServices 'Microsoft.Sql/servers/firewallRules@2023-08-01-preview' = {
  parent: server
  name: 'AllowAllWindowsAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource database 'Microsoft.Sql/servers/databases@2023-08-01-preview' = {
  // checkov:skip=CKV_AZURE_26: checkov's ARM check wants nested resources, which Bicep flattens; databaseAlerts below mails alertEmails
  // checkov:skip=CKV_AZURE_27: as above; databaseAlerts below sets emailAccountAdmins
  parent: server
  name: databaseName
  location: location
  tags: tags
  sku: {
    name: 'GP_S_Gen5'
    tier: 'GeneralPurpose'
    family: 'Gen5'
    capacity: 2
  }
  properties: {
    autoPauseDelay: 60
    minCapacity: json('0.5')
    requestedBackupStorageRedundancy: 'Zone'
    zoneRedundant: true
  }
}

// On top of the server's audit (logins, batches): changes of principals, permissions and schema
// in GroupMgr's database, as their own audit events.
resource databaseAuditing 'Microsoft.Sql/servers/databases/auditingSettings@2023-08-01-preview' = {
  parent: database
  name: 'default'
  properties: {
    state: 'Enabled'
    isAzureMonitorTargetEnabled: true
    retentionDays: 90
    auditActionsAndGroups: [
      'DATABASE_PRINCIPAL_CHANGE_GROUP'
      'DATABASE_ROLE_MEMBER_CHANGE_GROUP'
      'DATABASE_PERMISSION_CHANGE_GROUP'
      'SCHEMA_OBJECT_CHANGE_GROUP'
    ]
  }
}

resource databaseAlerts 'Microsoft.Sql/servers/databases/securityAlertPolicies@2023-08-01-preview' = {
  parent: database
  name: 'Default'
  properties: {
    state: 'Enabled'
    disabledAlerts: []
    emailAddresses: alertEmails
    emailAccountAdmins: true
  }
}

resource alerts 'Microsoft.Sql/servers/securityAlertPolicies@2023-08-01-preview' = {
  parent: server
  name: 'Default'
  properties: {
    state: 'Enabled'
    disabledAlerts: []
    emailAddresses: alertEmails
    emailAccountAdmins: true
  }
}

// Server auditing (every database) to Azure Monitor; the events of GroupMgr's database reach
// Log Analytics through its diagnostic setting below (master holds no GroupMgr data).
resource auditing 'Microsoft.Sql/servers/auditingSettings@2023-08-01-preview' = {
  parent: server
  name: 'default'
  properties: {
    state: 'Enabled'
    isAzureMonitorTargetEnabled: true
    retentionDays: 90
    auditActionsAndGroups: [
      'SUCCESSFUL_DATABASE_AUTHENTICATION_GROUP'
      'FAILED_DATABASE_AUTHENTICATION_GROUP'
      'BATCH_COMPLETED_GROUP'
    ]
  }
}

// The database's audit events (logins, batches) to Log Analytics.
resource auditToWorkspace 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: database
  properties: {
    workspaceId: workspaceId
    logs: [{ category: 'SQLSecurityAuditEvents', enabled: true }]
  }
}

output serverFqdn string = server.properties.fullyQualifiedDomainName
