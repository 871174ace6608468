module injector-harness/kind/node-image/pause

go 1.24
