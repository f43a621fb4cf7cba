// name: site-360
// group: Sites
// title: A site's 360° neighbourhood
// description: Everything around one site: the investigators who work there, its studies with their
//   conditions and sponsors, and the barriers its interactions raised. Returns paths, so Browser draws
//   the neighbourhood as a graph; the other columns name each neighbour for a table.
// param site_id: string, required, example "site:sun-yat-sen-cancer-center-guangzhou-china" -- id of the site
// param limit: integer = 150, example 150 -- at most this many paths
// returns: graph
MATCH (s:Site {id: $site_id})
CALL (s) {
  MATCH p = (s)<-[:WORKS_AT]-(:Investigator)
  RETURN p
  UNION
  MATCH p = (s)-[:PARTICIPATES_IN]->(:Study)-[:STUDIES]->(:Condition)
  RETURN p
  UNION
  MATCH p = (s)-[:PARTICIPATES_IN]->(:Study)-[:SPONSORED_BY]->(:Sponsor)
  RETURN p
  UNION
  MATCH p = (s)<-[:WITH_SITE]-(:Interaction)-[:CONCERNS]->(:Barrier)
  RETURN p
}
WITH p, last(nodes(p)) AS n
RETURN type(last(relationships(p))) AS via,
       labels(n)[0] AS neighbour,
       coalesce(n.id, n.iri) AS key,
       coalesce(n.name, n.title, n.label) AS name,
       p AS path
ORDER BY length(p), via, key
LIMIT toInteger($limit)
