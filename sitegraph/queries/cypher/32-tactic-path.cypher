// name: tactic-path
// group: Barriers and tactics
// title: The path behind a recommended tactic
// description: Why a tactic is suggested for a site: the site's interactions that raised a barrier, the
//   barrier's broader concepts (up to three levels) and the tactic that mitigates one of them, with the
//   evidence on MITIGATES. The tactic is given by its id, label or IRI.
// param site_id: string, required, example "site:guangdong-provincial-peoples-hospital-guangzhou-china" -- id of the site
// param tactic: string, required, example "redesign-query-prone-crf-pages" -- id, label or IRI of the tactic
// param limit: integer = 25, example 25 -- at most this many paths
// returns: graph
MATCH p = (s:Site {id: $site_id})<-[:WITH_SITE]-(i:Interaction)-[:CONCERNS]->(b:Barrier)-[:BROADER*0..3]->(g:Barrier)<-[m:MITIGATES]-(t:Tactic)
WHERE t.id = $tactic OR t.label = $tactic OR t.iri = $tactic
RETURN i.occurred_at AS occurred_at,
       i.channel AS channel,
       b.label AS barrier,
       g.label AS mitigated_concept,
       length(p) - 3 AS levels_up,
       t.label AS tactic,
       m.evidence_level AS evidence_level,
       m.effect AS effect,
       m.source AS source,
       p AS path
ORDER BY levels_up, occurred_at DESC, barrier
LIMIT toInteger($limit)
