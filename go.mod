module github.com/fiatdev/fiat

go 1.25.0
