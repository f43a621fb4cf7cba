// name: shared-investigators
// group: Investigators
// title: Investigators shared between two sites
// description: People who work at both sites, with the studies they hold a role on at either of them:
//   a warm introduction from one site to the other. Returns the paths for a graph view.
// param site_a: string, required, example "site:hunan-cancer-hospital-changsha-china" -- id of the first site
// param site_b: string, required, example "site:sun-yat-sen-cancer-center-guangzhou-china" -- id of the second site
// returns: graph
MATCH p = (a:Site {id: $site_a})<-[:WORKS_AT]-(i:Investigator)-[:WORKS_AT]->(b:Site {id: $site_b})
OPTIONAL MATCH (i)-[role:INVESTIGATOR_ON]->(st:Study)
WHERE role.site_id IN [a.id, b.id]
WITH p, i, collect(DISTINCT st.id) AS studies, collect(DISTINCT role.role) AS roles
RETURN i.id AS investigator_id,
       i.name AS investigator,
       studies,
       roles,
       p AS path
ORDER BY investigator_id
