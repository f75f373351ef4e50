"""The SQL expression language: types, schema, expressions, statements, compiler. No I/O."""
