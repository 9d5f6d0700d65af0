// Parameters of the dev environment. Secrets are not in this file: pass them on the command
// line from your secret store (infra/README.md), e.g.
//   -p clientSecret="$(az keyvault secret show … )" indexKey="$(openssl rand -base64 32)" publisherKey="$(openssl rand -base64 32)"
using 'main.bicep'

param environmentName = 'dev'
param clientId = readEnvironmentVariable('GROUPMGR_CLIENT_ID')
param allowedClients = readEnvironmentVariable('GROUPMGR_ALLOWED_CLIENTS')
param clientSecret = readEnvironmentVariable('GROUPMGR_CLIENT_SECRET')
param indexKey = readEnvironmentVariable('GROUPMGR_INDEX_KEY')
param publisherKey = readEnvironmentVariable('GROUPMGR_PUBLISHER_KEY')
param publisherTenantId = readEnvironmentVariable('GROUPMGR_PUBLISHER_ID')
param sqlAdminGroupName = 'GroupMgr SQL admins (dev)'
param sqlAdminGroupObjectId = readEnvironmentVariable('GROUPMGR_SQL_ADMIN_GROUP_ID')
param securityAlertEmails = ['security@groupmgr.example']
param maximumInstanceCount = 10
