// Log Analytics workspace and a workspace-based Application Insights that accepts only
// Entra-authenticated telemetry (the app's identity holds Monitoring Metrics Publisher).
param location string
param workspaceName string
param insightsName string
param tags object

@description('Days logs are kept.')
param retentionInDays int = 90

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
    features: { disableLocalAuth: true }
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: insightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
  }
}

output workspaceId string = workspace.id
output insightsName string = insights.name
output insightsConnectionString string = insights.properties.ConnectionString
