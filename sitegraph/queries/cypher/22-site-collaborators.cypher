// name: site-collaborators
// group: Investigators
// title: Investigators' collaboration around a site
// description: For each investigator who works at the site, the other investigators they share studies
//   with (anywhere), strongest collaborations first: the site's network beyond its walls.
// param site_id: string, required, example "site:sun-yat-sen-cancer-center-guangzhou-china" -- id of the site
// param limit: integer = 25, example 25 -- how many investigator pairs
// returns: table
MATCH (s:Site {id: $site_id})<-[:WORKS_AT]-(i:Investigator)-[:INVESTIGATOR_ON]->(st:Study)<-[:INVESTIGATOR_ON]-(j:Investigator)
WHERE i <> j
WITH i, j, collect(DISTINCT st.id) AS studies
OPTIONAL MATCH (j)-[:WORKS_AT]->(other:Site)
WITH i, j, studies, collect(DISTINCT other.name) AS collaborator_sites
RETURN i.id AS investigator_id,
       i.name AS investigator,
       j.id AS collaborator_id,
       j.name AS collaborator,
       size(studies) AS shared_studies,
       studies,
       collaborator_sites[..3] AS collaborator_sites
ORDER BY shared_studies DESC, investigator_id, collaborator_id
LIMIT toInteger($limit)
