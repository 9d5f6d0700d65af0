-- The Function App's managed identity as a contained database user of the `groupmgr`
-- database (Azure SQL is Entra-only: there are no SQL logins). Run once after the first
-- deployment, connected to the `groupmgr` database as a member of the SQL admin group:
--   sqlcmd -S <sqlServerFqdn> -d groupmgr --authentication-method ActiveDirectoryDefault \
--          -i infra/sql/app-user.sql -v APP_NAME=<functionAppName>
-- The user is named after the Function App (its system-assigned identity's display name).
IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'$(APP_NAME)')
    CREATE USER [$(APP_NAME)] FROM EXTERNAL PROVIDER;
GO
-- Read and write GroupMgr's tables; DDL for the migrations GroupMgr runs at start-up (under
-- an application lock, ARCHITECTURE.md §6). Nothing server-wide, no other database.
ALTER ROLE db_datareader ADD MEMBER [$(APP_NAME)];
ALTER ROLE db_datawriter ADD MEMBER [$(APP_NAME)];
ALTER ROLE db_ddladmin ADD MEMBER [$(APP_NAME)];
GO
