module buildpod.example/go-app

go 1.19
