/** What a read may cover: a cluster (or all) and namespaces (or all); and a page of a list. */
export interface Visibility {
  cluster: string | '*';
  namespaces: readonly string[] | '*';
}

export interface Page {
  limit: number;
  offset: number;
}
