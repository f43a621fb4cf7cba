// name: ontology-hierarchy
// group: Barriers and tactics
// title: The ontology hierarchy under a category
// description: Every barrier or tactic concept under a category of the ontology (the category itself
//   included), following BROADER down to a maximum depth: the vocabulary you can tag interactions with.
//   The category is given by its id, label or IRI.
// param concept: string, required, example "contracting-and-budget" -- id, label or IRI of the category (a Barrier or Tactic concept)
// param max_depth: integer = 10, example 3 -- how many levels below the category
// returns: graph
MATCH (top)
WHERE (top:Barrier OR top:Tactic) AND (top.id = $concept OR top.label = $concept OR top.iri = $concept)
MATCH p = (n)-[:BROADER*0..]->(top)
WHERE length(p) <= $max_depth
RETURN labels(n)[0] AS scheme,
       n.id AS concept_id,
       n.label AS concept,
       length(p) AS depth,
       CASE WHEN length(p) = 0 THEN null ELSE nodes(p)[1].label END AS broader,
       p AS path
ORDER BY depth, concept, concept_id
