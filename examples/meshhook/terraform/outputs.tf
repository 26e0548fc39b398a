# The inventory `meshdeploy hosts import --terraform-output FILE` reads, after
#   terraform output -json > FILE
# A list of {name, address, host_key}; docs/hosts.md, "Terraform".
output "meshdeploy_hosts" {
  description = "Hosts for meshdeploy.yml's hosts: list"
  value = [
    for i, s in hcloud_server.host : {
      name     = s.name
      address  = "ssh://${var.deploy_user}@${s.ipv4_address}:22"
      host_key = trimspace(tls_private_key.host[i].public_key_openssh)
    }
  ]
}

output "server_ids" {
  description = "Hetzner server ids, e.g. for a load balancer's targets"
  value       = [for s in hcloud_server.host : tostring(s.id)]
}
