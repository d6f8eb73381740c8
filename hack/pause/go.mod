module aifactory.dev/hack/pause

go 1.26
