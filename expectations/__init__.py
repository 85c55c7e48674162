"""Great Expectations suites (one per source contract and entity) and the gate that runs them."""
