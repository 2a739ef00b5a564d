/**
 * The same server URI with another database in its path (each test group gets its own
 * database). With credentials, the path also names the database to authenticate against:
 * keep the original one through authSource.
 */
export function withDbName(uri: string, dbName: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/([^/?]*))(?:\/([^?]*))?(\?.*)?$/.exec(uri);
  if (!match) throw new Error('MONGODB_URI is not a mongodb:// or mongodb+srv:// URI');
  const [, serverPart = '', hosts = '', originalDb = '', query = ''] = match;
  const params = new URLSearchParams(query.slice(1));
  if (hosts.includes('@') && !params.has('authSource')) params.set('authSource', originalDb || 'admin');
  const search = params.toString();
  return `${serverPart}/${dbName}${search ? `?${search}` : ''}`;
}
